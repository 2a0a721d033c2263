package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tdsession "github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/cluster"

	"github.com/tgflow/tgflow/services/ingest/session"
)

// authServer is a tgtest Telegram that knows the login calls: auth.sendCode, auth.signIn,
// account.getPassword + auth.checkPassword (any SRP answer is accepted: the test checks
// that the 2FA password is asked for and sent, not Telegram's SRP), and the QR token
// export.
type authServer struct {
	mu        sync.Mutex
	loggedIn  bool
	twoFA     bool
	exports   int
	passwords int
	phone     string
	code      string
}

// seen returns what the server saw, under its lock.
func (a *authServer) seen() (phone, code string, passwords, exports int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phone, a.code, a.passwords, a.exports
}

var login struct {
	once    sync.Once
	cluster *cluster.Cluster
	current atomic.Pointer[authServer]
	session []byte
	err     error
}

var me = &tg.User{ID: 77, AccessHash: 77, FirstName: "Ada", LastName: "Lovelace", Username: "ada", Self: true}

// testAlgo is the SRP algorithm of gotd's own password tests (Telegram's 2048-bit prime).
var testAlgo = &tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow{
	Salt1: []byte{230, 200, 149, 125, 223, 152, 141, 72},
	Salt2: []byte{159, 99, 68, 130, 43, 9, 108, 255, 135, 239, 164, 38, 245, 120, 87, 182},
	G:     3,
	P: []byte{
		199, 28, 174, 185, 198, 177, 201, 4, 142, 108, 82, 47, 112, 241, 63, 115,
		152, 13, 64, 35, 142, 62, 33, 193, 73, 52, 208, 55, 86, 61, 147, 15,
		72, 25, 138, 10, 167, 193, 64, 88, 34, 148, 147, 210, 37, 48, 244, 219,
		250, 51, 111, 110, 10, 201, 37, 19, 149, 67, 174, 212, 76, 206, 124, 55,
		32, 253, 81, 246, 148, 88, 112, 90, 198, 140, 212, 254, 107, 107, 19, 171,
		220, 151, 70, 81, 41, 105, 50, 132, 84, 241, 143, 175, 140, 89, 95, 100,
		36, 119, 254, 150, 187, 42, 148, 29, 91, 205, 29, 74, 200, 204, 73, 136,
		7, 8, 250, 155, 55, 142, 60, 79, 58, 144, 96, 190, 230, 124, 249, 164,
		164, 166, 149, 129, 16, 81, 144, 126, 22, 39, 83, 181, 107, 15, 107, 65,
		13, 186, 116, 216, 168, 75, 42, 20, 179, 20, 78, 14, 241, 40, 71, 84,
		253, 23, 237, 149, 13, 89, 101, 180, 185, 221, 70, 88, 45, 177, 23, 141,
		22, 156, 107, 196, 101, 176, 214, 255, 156, 163, 146, 143, 239, 91, 154, 228,
		228, 24, 252, 21, 232, 62, 190, 160, 248, 127, 169, 255, 94, 237, 112, 5,
		13, 237, 40, 73, 244, 123, 249, 89, 217, 86, 133, 12, 233, 41, 133, 31,
		13, 129, 21, 246, 53, 177, 5, 238, 46, 78, 21, 208, 75, 36, 84, 191,
		111, 79, 173, 240, 52, 177, 4, 3, 17, 156, 216, 227, 185, 47, 204, 91,
	},
}

func loginCluster(t *testing.T) {
	t.Helper()
	login.once.Do(func() {
		c := cluster.NewCluster(cluster.Options{})
		d := c.Dispatch(2, "tg")
		on := func(id uint32, h func(a *authServer, s *tgtest.Server, req *tgtest.Request) error) {
			d.HandleFunc(id, func(s *tgtest.Server, req *tgtest.Request) error {
				a := login.current.Load()
				if a == nil {
					return tgerr.New(500, "NO_TEST_RUNNING")
				}
				return h(a, s, req)
			})
		}
		on(tg.UsersGetUsersRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			a.mu.Lock()
			ok := a.loggedIn
			a.mu.Unlock()
			if !ok {
				return tgerr.New(401, "AUTH_KEY_UNREGISTERED")
			}
			return s.SendVector(req, me)
		})
		on(tg.AuthSendCodeRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			var r tg.AuthSendCodeRequest
			if err := r.Decode(req.Buf); err != nil {
				return err
			}
			a.mu.Lock()
			a.phone = r.PhoneNumber
			a.mu.Unlock()
			return s.SendResult(req, &tg.AuthSentCode{Type: &tg.AuthSentCodeTypeApp{Length: 5}, PhoneCodeHash: "hash"})
		})
		on(tg.AuthSignInRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			var r tg.AuthSignInRequest
			if err := r.Decode(req.Buf); err != nil {
				return err
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			a.code = r.PhoneCode
			if a.twoFA {
				return tgerr.New(401, "SESSION_PASSWORD_NEEDED")
			}
			a.loggedIn = true
			return s.SendResult(req, &tg.AuthAuthorization{User: me})
		})
		on(tg.AccountGetPasswordRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			random := make([]byte, 256)
			_, _ = rand.Read(random)
			return s.SendResult(req, &tg.AccountPassword{HasPassword: true, CurrentAlgo: testAlgo,
				SRPB: []byte{1, 2, 3, 4, 5, 6, 7, 8}, SRPID: 99, SecureRandom: random,
				NewAlgo: &tg.PasswordKdfAlgoUnknown{}, NewSecureAlgo: &tg.SecurePasswordKdfAlgoUnknown{}})
		})
		on(tg.AuthCheckPasswordRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			var r tg.AuthCheckPasswordRequest
			if err := r.Decode(req.Buf); err != nil {
				return err
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			a.passwords++
			a.loggedIn = true
			return s.SendResult(req, &tg.AuthAuthorization{User: me})
		})
		on(tg.AuthExportLoginTokenRequestTypeID, func(a *authServer, s *tgtest.Server, req *tgtest.Request) error {
			var r tg.AuthExportLoginTokenRequest
			if err := r.Decode(req.Buf); err != nil {
				return err
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			a.exports++
			switch {
			case a.exports == 1:
				// The token shown as a QR code; it "expires" at once, so the client asks again.
				return s.SendResult(req, &tg.AuthLoginToken{Token: []byte("qr-token"), Expires: int(time.Now().Unix())})
			case a.twoFA && !a.loggedIn:
				return tgerr.New(401, "SESSION_PASSWORD_NEEDED")
			}
			a.loggedIn = true
			return s.SendResult(req, &tg.AuthLoginTokenSuccess{Authorization: &tg.AuthAuthorization{User: me}})
		})
		go func() { _ = c.Up(context.Background()) }()
		select {
		case <-c.Ready():
		case <-time.After(30 * time.Second):
			login.err = errors.New("tgtest cluster not ready")
			return
		}
		login.cluster = c
		// One key exchange for the file; each test stores the session in its own bucket.
		login.current.Store(&authServer{})
		mem := &tdsession.StorageMemory{}
		opts := loginOptions()
		opts.SessionStorage = mem
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := telegram.NewClient(1, "h", opts).Run(ctx, func(context.Context) error { return nil }); err != nil {
			login.err = err
			return
		}
		login.current.Store(nil)
		login.session, login.err = mem.LoadSession(ctx)
	})
	if login.err != nil {
		t.Fatalf("login cluster: %v", login.err)
	}
}

func loginOptions() telegram.Options {
	return telegram.Options{PublicKeys: login.cluster.Keys(), Resolver: login.cluster.Resolver(), DCList: login.cluster.List(), DC: 2}
}

// runLogin logs in against a fresh fake account and returns the terminal output and the
// session storage.
func runLogin(t *testing.T, a *authServer, method, answers string) (string, *session.Storage, error) {
	t.Helper()
	loginCluster(t)
	if !login.current.CompareAndSwap(nil, a) {
		t.Fatal("login tests must not run in parallel")
	}
	defer login.current.Store(nil)
	st, err := session.NewStorage(bucket(t), key(t), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.StoreSession(ctx, login.session); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = session.Login(ctx, session.LoginOptions{AppID: 1, AppHash: "h", Storage: st, Method: method,
		In: strings.NewReader(answers), Out: &out, Telegram: loginOptions()})
	return out.String(), st, err
}

func TestLoginPhoneCode(t *testing.T) {
	a := &authServer{}
	out, st, err := runLogin(t, a, session.MethodPhone, "+15550001111\n12345\n")
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if phone, code, _, _ := a.seen(); phone != "+15550001111" || code != "12345" || !strings.Contains(out, "Logged in as Ada Lovelace (@ada)") {
		t.Fatalf("phone %q code %q output:\n%s", phone, code, out)
	}
	if b, err := st.LoadSession(context.Background()); err != nil || len(b) == 0 {
		t.Fatalf("stored session: %d bytes, %v", len(b), err)
	}
	// Logging in again only says who is logged in.
	a2 := &authServer{loggedIn: true}
	out, _, err = runLogin(t, a2, session.MethodPhone, "")
	if err != nil || !strings.Contains(out, "Already logged in as Ada Lovelace") {
		t.Fatalf("second login: %v\n%s", err, out)
	}
}

func TestLoginPhoneCodeWithPassword(t *testing.T) {
	a := &authServer{twoFA: true}
	out, _, err := runLogin(t, a, session.MethodPhone, "+15550001111\n12345\nhunter2\n")
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if _, _, pw, _ := a.seen(); pw != 1 || !strings.Contains(out, "2FA password") || !strings.Contains(out, "Logged in as") {
		t.Fatalf("passwords %d output:\n%s", pw, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatal("the password is echoed")
	}
}

func TestLoginQRWithPassword(t *testing.T) {
	a := &authServer{twoFA: true}
	out, _, err := runLogin(t, a, session.MethodQR, "hunter2\n")
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Scan this code") || !strings.ContainsAny(out, "█▀▄") {
		t.Fatalf("no QR code shown:\n%s", out)
	}
	if _, _, pw, _ := a.seen(); pw != 1 || !strings.Contains(out, "Logged in as Ada Lovelace") {
		t.Fatalf("passwords %d output:\n%s", pw, out)
	}
}

func TestLoginQR(t *testing.T) {
	a := &authServer{}
	out, _, err := runLogin(t, a, session.MethodQR, "")
	if _, _, _, exports := a.seen(); err != nil || !strings.Contains(out, "Logged in as") || exports < 2 {
		t.Fatalf("login: %v exports %d\n%s", err, exports, out)
	}
}
