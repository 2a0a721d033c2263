package ingest_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	tdsession "github.com/gotd/td/session"
	tdtelegram "github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/cluster"
)

// fakeTG is an in-process Telegram: gotd's tgtest MTProto server with handlers for the
// calls ingest makes, over channels and files the test controls.
type fakeTG struct {
	t        testing.TB
	mu       sync.Mutex
	channels map[int64]*fakeChannel
	files    map[int64]*fakeFile

	resolves    map[string]int
	getFiles    int
	getMessages int
	histories   []tg.MessagesGetHistoryRequest

	// Hooks run without the lock; a non-nil error is the RPC's answer.
	onHistory func(ch *fakeChannel, req *tg.MessagesGetHistoryRequest, n int) error
	onGetFile func(req *tg.UploadGetFileRequest) error
}

type fakeChannel struct {
	id, hash        int64
	username, title string
	private         bool
	msgs            map[int]tg.MessageClass
}

type fakeFile struct {
	data []byte
	ref  []byte
}

// base is the date of message 1 of every channel; message n is n seconds later.
var base = time.Now().Add(-72 * time.Hour).Truncate(time.Second)

// shared is the one tgtest cluster of the package and an auth key made on it once:
// an MTProto key exchange costs seconds under the race detector, so tests reuse the
// session (each test still stores it, encrypted, in its own tg-session bucket) and the
// cluster dispatches every call to the fake of the running test.
var shared struct {
	once    sync.Once
	cluster *cluster.Cluster
	current atomic.Pointer[fakeTG]
	session []byte
	err     error
}

func sharedCluster(t testing.TB) {
	t.Helper()
	shared.once.Do(func() {
		c := cluster.NewCluster(cluster.Options{})
		d := c.Dispatch(2, "tg")
		d.Vector(tg.UsersGetUsersRequestTypeID, &tg.User{ID: 10, AccessHash: 10, Username: "ingest", FirstName: "Ingest", Self: true})
		route := func(h func(f *fakeTG, s *tgtest.Server, req *tgtest.Request) error) func(s *tgtest.Server, req *tgtest.Request) error {
			return func(s *tgtest.Server, req *tgtest.Request) error {
				f := shared.current.Load()
				if f == nil {
					return tgerr.New(500, "NO_TEST_RUNNING")
				}
				return h(f, s, req)
			}
		}
		d.HandleFunc(tg.ContactsResolveUsernameRequestTypeID, route((*fakeTG).handleResolve))
		d.HandleFunc(tg.ChannelsGetChannelsRequestTypeID, route((*fakeTG).handleGetChannels))
		d.HandleFunc(tg.MessagesGetHistoryRequestTypeID, route((*fakeTG).handleHistory))
		d.HandleFunc(tg.ChannelsGetMessagesRequestTypeID, route((*fakeTG).handleGetMessages))
		d.HandleFunc(tg.UploadGetFileRequestTypeID, route((*fakeTG).handleGetFile))
		go func() { _ = c.Up(context.Background()) }() // lives as long as the test binary
		select {
		case <-c.Ready():
		case <-time.After(30 * time.Second):
			shared.err = errors.New("tgtest cluster not ready")
			return
		}
		shared.cluster = c
		// One key exchange for the package.
		mem := &tdsession.StorageMemory{}
		opts := clusterOptions()
		opts.SessionStorage = mem
		client := tdtelegram.NewClient(1, "test-hash", opts)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := client.Run(ctx, func(context.Context) error { return nil }); err != nil {
			shared.err = err
			return
		}
		shared.session, shared.err = mem.LoadSession(ctx)
	})
	if shared.err != nil {
		t.Fatalf("shared tgtest cluster: %v", shared.err)
	}
}

func clusterOptions() tdtelegram.Options {
	return tdtelegram.Options{
		PublicKeys: shared.cluster.Keys(),
		Resolver:   shared.cluster.Resolver(),
		DCList:     shared.cluster.List(),
		DC:         2,
		// gotd's own resend interval and retries (5s, 5): a request the in-process server
		// is slow to acknowledge on a loaded machine is not a failed request (a 100ms
		// interval with 3 retries failed media downloads under -race).
	}
}

// newFakeTG makes the fake Telegram of one test; tests using it do not run in parallel.
func newFakeTG(t testing.TB) *fakeTG {
	t.Helper()
	sharedCluster(t)
	f := &fakeTG{t: t, channels: map[int64]*fakeChannel{}, files: map[int64]*fakeFile{}, resolves: map[string]int{}}
	if !shared.current.CompareAndSwap(nil, f) {
		t.Fatal("another test's fake Telegram is active: these tests must not run in parallel")
	}
	t.Cleanup(func() { shared.current.Store(nil) })
	return f
}

// options connect a gotd client to the fake.
func (f *fakeTG) options() tdtelegram.Options { return clusterOptions() }

func (f *fakeTG) addChannel(id int64, username, title string) *fakeChannel {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeChannel{id: id, hash: id * 7, username: username, title: title, msgs: map[int]tg.MessageClass{}}
	f.channels[id] = c
	return c
}

// post adds or replaces a text message.
func (f *fakeTG) post(c *fakeChannel, id int, text string, edit ...func(m *tg.Message)) *tg.Message {
	m := &tg.Message{ID: id, PeerID: &tg.PeerChannel{ChannelID: c.id}, Date: int(base.Unix()) + id, Message: text, Post: true, Views: id}
	for _, e := range edit {
		e(m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.msgs[id] = m
	return m
}

// service adds a service message (a pin): not a post.
func (f *fakeTG) service(c *fakeChannel, id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.msgs[id] = &tg.MessageService{ID: id, PeerID: &tg.PeerChannel{ChannelID: c.id}, Date: int(base.Unix()) + id,
		Action: &tg.MessageActionPinMessage{}}
}

func (f *fakeTG) getMessagesCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getMessages
}

func (f *fakeTG) posts(c *fakeChannel, from, to int) {
	for id := from; id <= to; id++ {
		f.post(c, id, "post "+itoa(id))
	}
}

func (f *fakeTG) edit(c *fakeChannel, id int, fn func(m *tg.Message)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(c.msgs[id].(*tg.Message))
}

func (f *fakeTG) remove(c *fakeChannel, id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(c.msgs, id)
}

// photo registers a file and returns photo media whose largest size is it.
func (f *fakeTG) photo(id int64, data []byte) *tg.MessageMediaPhoto {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[id] = &fakeFile{data: data, ref: []byte{1}}
	return &tg.MessageMediaPhoto{Photo: &tg.Photo{ID: id, AccessHash: id, FileReference: []byte{1}, Date: int(base.Unix()), DCID: 2,
		Sizes: []tg.PhotoSizeClass{
			&tg.PhotoStrippedSize{Type: "i", Bytes: []byte{1, 2, 3}},
			&tg.PhotoSize{Type: "m", W: 320, H: 240, Size: len(data) / 2},
			&tg.PhotoSize{Type: "y", W: 1280, H: 960, Size: len(data)},
		}}}
}

// document registers a file and returns document media.
func (f *fakeTG) document(id int64, data []byte, mime string, attrs ...tg.DocumentAttributeClass) *tg.MessageMediaDocument {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[id] = &fakeFile{data: data, ref: []byte{1}}
	return &tg.MessageMediaDocument{Document: &tg.Document{ID: id, AccessHash: id, FileReference: []byte{1}, Date: int(base.Unix()),
		MimeType: mime, Size: int64(len(data)), DCID: 2, Attributes: attrs}}
}

func (f *fakeTG) setOnHistory(fn func(ch *fakeChannel, req *tg.MessagesGetHistoryRequest, n int) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onHistory = fn
}

func (f *fakeTG) setOnGetFile(fn func(req *tg.UploadGetFileRequest) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onGetFile = fn
}

func (f *fakeTG) resolveCount(username string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resolves[username]
}

func (f *fakeTG) historyCalls() []tg.MessagesGetHistoryRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.histories)
}

func (f *fakeTG) fileCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getFiles
}

func (c *fakeChannel) chat() *tg.Channel {
	return &tg.Channel{ID: c.id, AccessHash: c.hash, Title: c.title, Username: c.username, Broadcast: true,
		Photo: &tg.ChatPhotoEmpty{}, Date: int(base.Unix())}
}

func (f *fakeTG) handleResolve(s *tgtest.Server, req *tgtest.Request) error {
	var r tg.ContactsResolveUsernameRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	f.mu.Lock()
	f.resolves[r.Username]++
	var found *fakeChannel
	for _, c := range f.channels {
		if c.username == r.Username {
			found = c
		}
	}
	f.mu.Unlock()
	if found == nil {
		return tgerr.New(400, "USERNAME_NOT_OCCUPIED")
	}
	var chat tg.ChatClass = found.chat()
	if found.private {
		chat = &tg.ChannelForbidden{ID: found.id, AccessHash: found.hash, Title: found.title}
	}
	return s.SendResult(req, &tg.ContactsResolvedPeer{Peer: &tg.PeerChannel{ChannelID: found.id}, Chats: []tg.ChatClass{chat}})
}

func (f *fakeTG) handleGetChannels(s *tgtest.Server, req *tgtest.Request) error {
	var r tg.ChannelsGetChannelsRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	f.mu.Lock()
	var chats []tg.ChatClass
	for _, in := range r.ID {
		if ic, ok := in.(*tg.InputChannel); ok {
			if c := f.channels[ic.ChannelID]; c != nil {
				chats = append(chats, c.chat())
			}
		}
	}
	f.mu.Unlock()
	if len(chats) == 0 {
		return tgerr.New(400, "CHANNEL_INVALID")
	}
	return s.SendResult(req, &tg.MessagesChats{Chats: chats})
}

func (f *fakeTG) channelOf(peer interface{ GetChannelID() int64 }, hash int64) (*fakeChannel, error) {
	c := f.channels[peer.GetChannelID()]
	switch {
	case c == nil || c.hash != hash:
		return nil, tgerr.New(400, "CHANNEL_INVALID")
	case c.private:
		return nil, tgerr.New(400, "CHANNEL_PRIVATE")
	}
	return c, nil
}

func (f *fakeTG) handleHistory(s *tgtest.Server, req *tgtest.Request) error {
	var r tg.MessagesGetHistoryRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	peer, ok := r.Peer.(*tg.InputPeerChannel)
	if !ok {
		return tgerr.New(400, "PEER_ID_INVALID")
	}
	f.mu.Lock()
	f.histories = append(f.histories, r)
	n := 0
	for _, h := range f.histories {
		if h.Peer.(*tg.InputPeerChannel).ChannelID == peer.ChannelID {
			n++
		}
	}
	c, err := f.channelOf(peer, peer.AccessHash)
	hook := f.onHistory
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if hook != nil {
		if err := hook(c, &r, n); err != nil {
			return err
		}
	}
	f.mu.Lock()
	ids := make([]int, 0, len(c.msgs))
	for id := range c.msgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	var out []tg.MessageClass
	for _, id := range ids {
		if r.OffsetID > 0 && id >= r.OffsetID || r.MinID > 0 && id <= r.MinID || r.MaxID > 0 && id >= r.MaxID {
			continue
		}
		out = append(out, c.msgs[id])
		if len(out) == r.Limit {
			break
		}
	}
	raw, err := encode(&tg.MessagesChannelMessages{Count: len(c.msgs), Messages: out, Chats: []tg.ChatClass{c.chat()}, Pts: 1})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return s.SendResult(req, raw)
}

func (f *fakeTG) handleGetMessages(s *tgtest.Server, req *tgtest.Request) error {
	var r tg.ChannelsGetMessagesRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	in, ok := r.Channel.(*tg.InputChannel)
	if !ok {
		return tgerr.New(400, "CHANNEL_INVALID")
	}
	f.mu.Lock()
	f.getMessages++
	c, err := f.channelOf(in, in.AccessHash)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	var out []tg.MessageClass
	for _, im := range r.ID {
		id := im.(*tg.InputMessageID).ID
		if m, ok := c.msgs[id]; ok {
			out = append(out, m)
		} else {
			out = append(out, &tg.MessageEmpty{ID: id})
		}
	}
	raw, err := encode(&tg.MessagesChannelMessages{Count: len(c.msgs), Messages: out, Chats: []tg.ChatClass{c.chat()}, Pts: 1})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return s.SendResult(req, raw)
}

func (f *fakeTG) handleGetFile(s *tgtest.Server, req *tgtest.Request) error {
	var r tg.UploadGetFileRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	f.mu.Lock()
	f.getFiles++
	hook := f.onGetFile
	f.mu.Unlock()
	if hook != nil {
		if err := hook(&r); err != nil {
			return err
		}
	}
	var id int64
	var ref []byte
	switch l := r.Location.(type) {
	case *tg.InputPhotoFileLocation:
		id, ref = l.ID, l.FileReference
	case *tg.InputDocumentFileLocation:
		id, ref = l.ID, l.FileReference
	default:
		return tgerr.New(400, "LOCATION_INVALID")
	}
	f.mu.Lock()
	file := f.files[id]
	f.mu.Unlock()
	switch {
	case file == nil:
		return tgerr.New(400, "FILE_ID_INVALID")
	case string(ref) != string(file.ref):
		return tgerr.New(400, "FILE_REFERENCE_EXPIRED")
	}
	start := min(int(r.Offset), len(file.data))
	end := min(start+r.Limit, len(file.data))
	return s.SendResult(req, &tg.UploadFile{Type: &tg.StorageFileJpeg{}, Bytes: file.data[start:end]})
}

// encode encodes under the lock: the messages are shared with the test goroutine, and
// encoding a gotd object writes its flags.
func encode(e bin.Encoder) (rawResult, error) {
	var b bin.Buffer
	if err := e.Encode(&b); err != nil {
		return nil, errors.New("fake telegram: " + err.Error())
	}
	return rawResult(b.Copy()), nil
}

// rawResult is an already encoded answer.
type rawResult []byte

func (r rawResult) Encode(b *bin.Buffer) error {
	b.Put(r)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
