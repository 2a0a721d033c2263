package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/mdp/qrterminal/v3"
	"golang.org/x/term"

	tdsession "github.com/gotd/td/session"
)

// Login methods.
const (
	// MethodQR shows a QR code to scan in a logged-in Telegram app (Settings → Devices →
	// Link Desktop Device), then asks for the 2FA password if the account has one.
	MethodQR = "qr"
	// MethodPhone asks for the phone number, the code Telegram sends, then the 2FA password
	// if the account has one.
	MethodPhone = "phone"
)

// ErrMethod is returned for a login method other than MethodQR and MethodPhone.
var ErrMethod = errors.New(`session: login method must be "qr" or "phone"`)

// LoginOptions configure Login.
type LoginOptions struct {
	AppID   int
	AppHash string
	// Storage receives the session (normally a *Storage over the tg-session bucket).
	Storage tdsession.Storage
	// Method is MethodQR (default) or MethodPhone.
	Method string
	// In and Out are the terminal: answers are read a line at a time from In; prompts and
	// the QR code go to Out. When In is a terminal the password is read without echo.
	In  io.Reader
	Out io.Writer
	// Telegram are extra gotd client options (DC list, resolver, keys); SessionStorage and
	// UpdateHandler are set by Login.
	Telegram telegram.Options
}

// Login logs a Telegram account in and stores its session. Logging in an already logged-in
// session only says who it is.
func Login(ctx context.Context, o LoginOptions) error {
	if o.Method == "" {
		o.Method = MethodQR
	}
	if o.Method != MethodQR && o.Method != MethodPhone {
		return ErrMethod
	}
	if o.Storage == nil || o.In == nil || o.Out == nil {
		return errors.New("session: login needs a storage, an input and an output")
	}
	if o.AppID <= 0 || o.AppHash == "" {
		return errors.New("session: login needs TGFLOW_TG_APP_ID and TGFLOW_TG_APP_HASH (from https://my.telegram.org)")
	}
	dispatcher := tg.NewUpdateDispatcher()
	opts := o.Telegram
	opts.SessionStorage = o.Storage
	opts.UpdateHandler = dispatcher
	client := telegram.NewClient(o.AppID, o.AppHash, opts)
	t := newTerminal(o.In, o.Out)
	return client.Run(ctx, func(ctx context.Context) error {
		st, err := client.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("login: auth status: %w", err)
		}
		if st.Authorized {
			fmt.Fprintf(o.Out, "Already logged in as %s.\n", who(st.User))
			return nil
		}
		switch o.Method {
		case MethodQR:
			err = loginQR(ctx, client, dispatcher, t)
		case MethodPhone:
			err = client.Auth().IfNecessary(ctx, auth.NewFlow(t, auth.SendCodeOptions{}))
		}
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		st, err = client.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("login: auth status: %w", err)
		}
		if !st.Authorized {
			return errors.New("login: Telegram did not authorize the session")
		}
		fmt.Fprintf(o.Out, "Logged in as %s. The session is stored encrypted in the tg-session bucket.\n", who(st.User))
		return nil
	})
}

func loginQR(ctx context.Context, client *telegram.Client, d tg.UpdateDispatcher, t *terminal) error {
	loggedIn := qrlogin.OnLoginToken(d)
	_, err := client.QR().Auth(ctx, loggedIn, func(_ context.Context, token qrlogin.Token) error {
		fmt.Fprintf(t.out, "\nScan this code in Telegram: Settings → Devices → Link Desktop Device (valid until %s).\n\n", token.Expires().Local().Format("15:04:05"))
		qrterminal.GenerateHalfBlock(token.URL(), qrterminal.L, t.out)
		return nil
	})
	if tgerr.Is(err, "SESSION_PASSWORD_NEEDED") || errors.Is(err, auth.ErrPasswordAuthNeeded) {
		pw, perr := t.Password(ctx)
		if perr != nil {
			return perr
		}
		if _, err := client.Auth().Password(ctx, pw); err != nil {
			return fmt.Errorf("2FA password: %w", err)
		}
		return nil
	}
	return err
}

func who(u *tg.User) string {
	if u == nil {
		return "an unknown user"
	}
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if u.Username != "" {
		name += " (@" + u.Username + ")"
	}
	if name == "" {
		return fmt.Sprintf("user %d", u.ID)
	}
	return name
}

// terminal is a gotd UserAuthenticator that asks on a reader/writer pair.
type terminal struct {
	in  io.Reader
	r   *bufio.Reader
	out io.Writer
}

var _ auth.UserAuthenticator = (*terminal)(nil)

func newTerminal(in io.Reader, out io.Writer) *terminal {
	return &terminal{in: in, r: bufio.NewReader(in), out: out}
}

func (t *terminal) ask(ctx context.Context, prompt string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	fmt.Fprint(t.out, prompt)
	line, err := t.r.ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if line == "" {
		return "", errors.New("no answer given")
	}
	return line, nil
}

// Phone asks for the phone number in international format.
func (t *terminal) Phone(ctx context.Context) (string, error) {
	return t.ask(ctx, "Phone number (international format, e.g. +441234567890): ")
}

// Code asks for the login code Telegram sent.
func (t *terminal) Code(ctx context.Context, _ *tg.AuthSentCode) (string, error) {
	return t.ask(ctx, "Code Telegram sent you: ")
}

// Password asks for the 2FA password, without echo when the input is a terminal.
func (t *terminal) Password(ctx context.Context) (string, error) {
	if f, ok := t.in.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) && t.r.Buffered() == 0 {
		fmt.Fprint(t.out, "2FA password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(t.out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("no password given")
		}
		return string(b), nil
	}
	return t.ask(ctx, "2FA password: ")
}

// AcceptTermsOfService refuses: tgflow logs existing accounts in, it does not sign up.
func (t *terminal) AcceptTermsOfService(_ context.Context, _ tg.HelpTermsOfService) error {
	return errors.New("this phone number has no Telegram account: sign up in a Telegram app first")
}

// SignUp refuses, as AcceptTermsOfService does.
func (t *terminal) SignUp(context.Context) (auth.UserInfo, error) {
	return auth.UserInfo{}, errors.New("this phone number has no Telegram account: sign up in a Telegram app first")
}
