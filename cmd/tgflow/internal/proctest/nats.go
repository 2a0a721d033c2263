package proctest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of nats-server processes on loopback.
type Cluster struct {
	Nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	*Proc
	ServerName string
	ClientPort int
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.ClientPort) }

// StartCluster starts size nats-server processes (binary bin) forming one JetStream cluster,
// each with its own store under dir, and waits until JetStream answers.
func StartCluster(t TB, bin, dir string, size int) *Cluster {
	t.Helper()
	type ports struct{ client, route int }
	ps := make([]ports, size)
	for i := range ps {
		ps[i] = ports{FreePort(t), FreePort(t)}
	}
	var routes []string
	for _, p := range ps {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p.route))
	}
	c := &Cluster{}
	for i, p := range ps {
		name := fmt.Sprintf("n%d", i+1)
		store := filepath.Join(dir, name)
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: tgflow
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, p.client, store, p.route, strings.Join(routes, ", "))
		cf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n := &Node{Proc: NewProc(t, dir, "nats-"+name, bin, []string{"-c", cf}, os.Environ()), ServerName: name, ClientPort: p.client}
		n.Start(t)
		c.Nodes = append(c.Nodes, n)
	}
	c.WaitJetStream(t, 2*time.Minute)
	return c
}

// URLs is the comma-separated client URLs of every node (TGFLOW_NATS_URL).
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// Node returns the node named name (a server name such as a stream leader), or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.ServerName == name {
			return n
		}
	}
	return nil
}

// Connect opens a client connection to the cluster, closed in t.Cleanup.
func (c *Cluster) Connect(t TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", c.URLs(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// WaitJetStream waits until the cluster's JetStream answers account requests (a meta
// leader is elected).
func (c *Cluster) WaitJetStream(t TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(c.URLs(), nats.Timeout(time.Second))
		if err == nil {
			js, jerr := jetstream.New(nc)
			if jerr == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = js.AccountInfo(ctx)
				cancel()
			} else {
				err = jerr
			}
			nc.Close()
			if err == nil {
				return
			}
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("JetStream of the cluster %s not ready within %v: %v", c.URLs(), timeout, last)
}

// StartServer starts one JetStream nats-server process (binary bin) with its store under
// dir, and waits until JetStream answers. Kill and Start restart it on the same port and
// store.
func StartServer(t TB, bin, dir string) *Cluster {
	t.Helper()
	port := FreePort(t)
	store := filepath.Join(dir, "nats-store")
	n := &Node{Proc: NewProc(t, dir, "nats", bin, []string{"-js", "-sd", store, "-a", "127.0.0.1", "-p", fmt.Sprint(port)}, os.Environ()),
		ServerName: "nats", ClientPort: port}
	n.Start(t)
	c := &Cluster{Nodes: []*Node{n}}
	c.WaitJetStream(t, time.Minute)
	return c
}
