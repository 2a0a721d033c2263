// Package server declares the NATS users of the production-shaped deployment and renders
// nats.conf from them: one user per service, allowed exactly what the topology says the
// service does. A user publishes the fact subjects of its producer (events registry) and no
// other, reads and acknowledges its own durable consumers (nats/topology), dead-letters to
// their DLQ subjects, and reaches only the buckets and object stores it names below. The
// committed nats.conf is generated from Users (a test keeps them equal; regenerate with
// `go test ./nats/server -run TestCommittedConfMatchesCode -update`).
package server

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// Access is what a user may do to a bucket or an object store.
type Access int

// Accesses.
const (
	Read Access = iota + 1
	ReadWrite
)

// User is one NATS user of the deployment.
type User struct {
	// Name is the NATS user name: the service's name (`tgflow <Name>`), or admin or cli.
	Name string
	Doc  string
	// Admin users have no permission limits (operators, `tgflow nats apply`).
	Admin bool
	// Consumers are the durable consumers of the log the user reads, acknowledges and
	// dead-letters for.
	Consumers []string
	// Producer, when set, is the producer whose fact subjects the user publishes.
	Producer string
	// Buckets and Objects are the KV buckets and object stores the user reaches.
	Buckets map[string]Access
	Objects map[string]Access
	// LogReader users open ordered (ephemeral) readers on the log: nats/logtail followers,
	// replays at start, projection catch-ups and rebuilds. They may not create, delete or
	// pull from another service's durable consumer.
	LogReader bool
	// ScansLog users read the log with subject-filtered direct gets (services/ingest/logscan:
	// ingest finding its own facts, `tgflow channels ls`, the API's post history).
	ScansLog bool
	// PausesConsumers users pause and resume their own consumers: `tgflow projections
	// rebuild|verify` run in a projection's container, under its user.
	PausesConsumers bool
	// ReadsConsumers are durable consumers (of any service) whose info the user reads.
	ReadsConsumers []string
	// ListsConsumers users list the log's consumers with their info (the API's lag page).
	ListsConsumers bool
	// ReadsDLQ users read the dead letters (doctor's DLQ depth by consumer and class).
	ReadsDLQ bool
}

// Users returns every user of the deployment, in a fixed order: admin, cli, one per
// service, the API.
func Users() []User {
	return []User{
		{Name: "admin", Admin: true, Doc: "operators, `tgflow nats apply`, `tgflow import`, `tgflow dlq`, `tgflow doctor`, `tgflow projections`"},
		{Name: "cli", Producer: events.ProducerCLI, Doc: "`tgflow channels`: subscription commands; reads the channel registry, cursors and the log",
			Buckets: map[string]Access{topology.BucketChannels: Read, topology.BucketCursors: Read}, ScansLog: true,
			ReadsConsumers: []string{topology.ConsumerIngest}},
		{Name: "ingest", Producer: events.ProducerIngest, Consumers: []string{topology.ConsumerIngest}, ScansLog: true,
			Doc: "Telegram reads: its cursors, channel registry, session and lease; the media store; scans its own facts on the log",
			Buckets: map[string]Access{topology.BucketCursors: ReadWrite, topology.BucketChannels: ReadWrite,
				topology.BucketSession: ReadWrite, topology.BucketLeases: ReadWrite},
			Objects: map[string]Access{topology.ObjectMedia: ReadWrite}},
		{Name: "vision", Producer: events.ProducerVision, Consumers: []string{topology.ConsumerVision}, LogReader: true,
			Doc:     "reads images from the media store; follows its own facts for the near-duplicate index",
			Objects: map[string]Access{topology.ObjectMedia: Read}},
		{Name: "tagger", Producer: events.ProducerTagger, Consumers: []string{topology.ConsumerTagger}, LogReader: true,
			Doc:     "its post state and document-frequency snapshot; follows the log for document frequencies",
			Buckets: map[string]Access{topology.BucketTagPosts: ReadWrite, topology.BucketTagDF: ReadWrite}},
		{Name: "enricher", Producer: events.ProducerEnricher, Consumers: []string{topology.ConsumerEnricher},
			Doc:     "its page cache and raw page store",
			Buckets: map[string]Access{topology.BucketPages: ReadWrite}, Objects: map[string]Access{topology.ObjectPages: ReadWrite}},
		{Name: "embedder", Producer: events.ProducerEmbedder, Consumers: []string{topology.ConsumerEmbedder},
			Doc: "its consumer and its facts only"},
		{Name: "albums", Producer: events.ProducerAlbums, Consumers: []string{topology.ConsumerAlbums}, LogReader: true,
			Doc:     "its assembly state; looks its own summaries up on the log",
			Buckets: map[string]Access{topology.BucketAlbums: ReadWrite}},
		{Name: "trends", Producer: events.ProducerTrends, Consumers: []string{topology.ConsumerTrends}, LogReader: true,
			Doc: "replays the log at start (tag windows, cooldowns)"},
		{Name: "proj-postgres", Consumers: []string{topology.ConsumerProjPostgres}, LogReader: true, PausesConsumers: true,
			Doc: "Postgres projection: its consumer; catches up and rebuilds from the log"},
		{Name: "proj-qdrant", Consumers: []string{topology.ConsumerProjQdrant}, LogReader: true, PausesConsumers: true,
			Doc: "Qdrant projection: its consumer; catches up and rebuilds from the log"},
		{Name: "proj-neo4j", Consumers: []string{topology.ConsumerProjNeo4j}, LogReader: true, PausesConsumers: true,
			Doc: "Neo4j projection: its consumer; catches up and rebuilds from the log"},
		{Name: "doctor", LogReader: true, ScansLog: true, ListsConsumers: true, ReadsDLQ: true,
			Doc: "`tgflow doctor --listen` (the dashboard's consumer, DLQ, stuck-post and checkpoint series): reads streams, consumers and the log; publishes nothing"},
		{Name: "api", ScansLog: true, ListsConsumers: true,
			Doc: "`tgflow api`: reads a post's facts from the log and the consumers' lag; publishes nothing"},
	}
}

// Lookup finds a user by name.
func Lookup(name string) (User, bool) {
	for _, u := range Users() {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// PasswordVar is the environment variable nats-server reads the user's password from
// (NATS_<NAME>_PASSWORD, dashes as underscores).
func (u User) PasswordVar() string {
	return "NATS_" + strings.ToUpper(strings.ReplaceAll(u.Name, "-", "_")) + "_PASSWORD"
}

// FactSubjects are the subjects of the facts the user publishes: one wildcard per event
// type of its producer (the last token is the payload's subject token).
func (u User) FactSubjects() []string {
	if u.Producer == "" {
		return nil
	}
	var out []string
	for _, s := range events.Produces(u.Producer) {
		out = append(out, s.Subject+".*")
	}
	return out
}

const api = "$JS.API."

// Permissions returns the subjects the user may publish and those it may not (deny wins
// over allow in nats-server). An admin has none: it is unrestricted.
func (u User) Permissions() (allow, deny []string) {
	if u.Admin {
		return nil, nil
	}
	log := topology.LogStream
	allow = []string{api + "INFO", api + "STREAM.INFO." + log}
	allow = append(allow, u.FactSubjects()...)
	for _, name := range u.Consumers {
		allow = append(allow, api+"CONSUMER.CREATE."+log+"."+name)
		// nats.go names the filter in the subject of a consumer with exactly one (every
		// consumer of the topology has two or more: its inputs and its replay subject).
		if c, ok := topology.LookupConsumer(name); ok && len(c.Filters()) == 1 {
			allow = append(allow, api+"CONSUMER.CREATE."+log+"."+name+"."+c.Filters()[0])
		}
		allow = append(allow, api+"CONSUMER.INFO."+log+"."+name, api+"CONSUMER.MSG.NEXT."+log+"."+name,
			"$JS.ACK."+log+"."+name+".>", topology.DLQSubject(name))
		if u.PausesConsumers {
			allow = append(allow, api+"CONSUMER.PAUSE."+log+"."+name)
		}
	}
	if u.ReadsDLQ {
		dlq := topology.DLQStream
		allow = append(allow, api+"STREAM.INFO."+dlq, api+"STREAM.MSG.GET."+dlq, api+"DIRECT.GET."+dlq, api+"DIRECT.GET."+dlq+".>")
	} else if len(u.Consumers) > 0 {
		// A service process that could not start its service prints the log's and the DLQ's
		// summary as it exits (tgflow ingest without Telegram credentials).
		allow = append(allow, api+"STREAM.INFO."+topology.DLQStream)
	}
	for _, c := range u.ReadsConsumers {
		allow = append(allow, api+"CONSUMER.INFO."+log+"."+c)
	}
	if u.ListsConsumers {
		allow = append(allow, api+"CONSUMER.LIST."+log)
	}
	if u.ScansLog {
		allow = append(allow, api+"DIRECT.GET."+log, api+"DIRECT.GET."+log+".>")
	}
	if u.LogReader {
		allow = append(allow,
			api+"CONSUMER.CREATE."+log+".*", api+"CONSUMER.CREATE."+log+".*.>",
			api+"CONSUMER.INFO."+log+".*", api+"CONSUMER.MSG.NEXT."+log+".*",
			api+"CONSUMER.DELETE."+log+".*")
		// An ordered reader is named at random, so the allow above is by wildcard: deny every
		// durable consumer of the topology, its own included, but what its own consumers need.
		for _, c := range topology.Consumers() {
			deny = append(deny, api+"CONSUMER.DELETE."+log+"."+c.Name)
			if slices.Contains(u.Consumers, c.Name) {
				if len(c.Filters()) > 1 { // its only create subject is the unfiltered one
					deny = append(deny, api+"CONSUMER.CREATE."+log+"."+c.Name+".>")
				}
				continue
			}
			deny = append(deny, api+"CONSUMER.CREATE."+log+"."+c.Name, api+"CONSUMER.CREATE."+log+"."+c.Name+".>",
				api+"CONSUMER.MSG.NEXT."+log+"."+c.Name)
		}
	}
	for _, b := range sortedKeys(u.Buckets) {
		allow = append(allow, readBacking("KV_"+b)...)
		if u.Buckets[b] == ReadWrite {
			allow = append(allow, "$KV."+b+".>")
		}
	}
	for _, o := range sortedKeys(u.Objects) {
		allow = append(allow, readBacking("OBJ_"+o)...)
		if u.Objects[o] == ReadWrite {
			// A put replaces an object's chunks: the old ones are purged.
			allow = append(allow, "$O."+o+".>", api+"STREAM.PURGE.OBJ_"+o)
		}
	}
	return allow, deny
}

// readBacking is what reading a bucket's or object store's stream takes: its info, direct
// and plain gets, and short-lived ordered consumers (watch, list keys, object reads) with
// their flow control.
func readBacking(stream string) []string {
	return []string{
		api + "STREAM.INFO." + stream,
		api + "DIRECT.GET." + stream, api + "DIRECT.GET." + stream + ".>", api + "STREAM.MSG.GET." + stream,
		api + "CONSUMER.CREATE." + stream, api + "CONSUMER.CREATE." + stream + ".>",
		api + "CONSUMER.INFO." + stream + ".*", api + "CONSUMER.MSG.NEXT." + stream + ".*",
		api + "CONSUMER.DELETE." + stream + ".*", "$JS.FC." + stream + ".>",
	}
}

func sortedKeys(m map[string]Access) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Conf renders nats.conf: the server, JetStream, and the TGFLOW account with every user.
func Conf() []byte {
	var b strings.Builder
	b.WriteString(`# NATS server of the production-shaped deployment (docker-compose.yml).
# GENERATED from nats/server/users.go; do not edit. Regenerate with
#   go test ./nats/server -run TestCommittedConfMatchesCode -update
# JetStream on, one account, one user per service with least-privilege permissions derived
# from the topology (its consumers, the fact subjects of its producer, its buckets).
# Passwords come from the environment ($VAR references are resolved by nats-server).
server_name: tgflow-nats
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
max_payload: 16MB

jetstream {
  store_dir: /data/jetstream
  max_file_store: 200GB
}

accounts {
  TGFLOW {
    jetstream: enabled
    users: [
`)
	for i, u := range Users() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "      # %s: %s\n", u.Name, u.Doc)
		if u.Admin {
			fmt.Fprintf(&b, "      { user: %s, password: $%s }\n", u.Name, u.PasswordVar())
			continue
		}
		allow, deny := u.Permissions()
		fmt.Fprintf(&b, "      { user: %s, password: $%s,\n        permissions: {\n", u.Name, u.PasswordVar())
		fmt.Fprintf(&b, "          publish: {\n            allow: %s\n", list(allow))
		if len(deny) > 0 {
			fmt.Fprintf(&b, "            deny: %s\n", list(deny))
		}
		b.WriteString("          }\n          subscribe: { allow: [\"_INBOX.>\"] }\n        }\n      }\n")
	}
	b.WriteString("    ]\n  }\n}\n")
	return []byte(b.String())
}

func list(subjects []string) string {
	var b strings.Builder
	b.WriteString("[\n")
	for _, s := range subjects {
		fmt.Fprintf(&b, "              %q\n", s)
	}
	b.WriteString("            ]")
	return b.String()
}
