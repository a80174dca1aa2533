package raftnode

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// Entry layout. Every Raft entry the FSM applies starts with a format
// version byte and a type byte, so a newer version's entry is recognised
// (and recorded as unknown) instead of misread.
//
//	events: [1][1][codec][uvarint count][payload: envelopes compressed with codec]
//	config: [1][2][JSON of command]
const (
	entryVersion = 1

	entryEvents = 1
	entryConfig = 2
)

// Config operations, replicated through Raft so every node agrees on apps,
// keys and node addresses.
const (
	opCreateApp = "create_app" // App + its first Key
	opCreateKey = "create_key" // Key
	opRevokeKey = "revoke_key" // KeyID
	opSetNode   = "set_node"   // Node: a member's advertised addresses
	opDelNode   = "del_node"   // NodeID
	// opPutSchema registers the next version of a schema (Schema: its
	// category, name, document and created_at; the FSM numbers it and
	// records its effective seq). A schema that does not compile is refused
	// in apply too, the same way on every node.
	opPutSchema = "put_schema"
	// opRevalidate records a revalidation request (Revalidation: its
	// filters and requested_at; the FSM sets its ID and AtSeq).
	opRevalidate = "revalidate"
	// opSeed is a new cluster's first state, from the flags of the node
	// that bootstrapped it (Key: the admin key of --admin-key; Config: the
	// first cluster config, over the defaults). It is applied once per
	// cluster: later seeds are refused, so a node restarted with an old
	// --admin-key never brings a revoked key back.
	opSeed = "seed"
	// opSetConfig changes fields of the cluster config (Config: the
	// fields to change). The FSM applies the patch to the version in force
	// and records the new version's position, as for a schema.
	opSetConfig = "set_config"
	// opSetRateLimit sets or clears a key's rate limit (KeyID, RateLimit:
	// nil clears it).
	opSetRateLimit = "set_rate_limit"
	// opRetain moves the cluster's retention cut up to FirstSeq (the
	// leader decides it by received_at): events below it leave every query
	// of every node, then every node's disk.
	opRetain = "retain"
	// opErase records a deletion of a session (Deletion: its session id
	// and requested_at; the FSM sets its ID and AtSeq).
	opErase = "erase"
	// opNoop changes nothing: a leader appends one so that every node has
	// something new to snapshot (an erasure needs a fresh snapshot).
	opNoop = "noop"
)

// command is a replicated configuration change.
type command struct {
	Op     string      `json:"op"`
	App    *theeye.App `json:"app,omitempty"`
	Key    *theeye.Key `json:"key,omitempty"`
	KeyID  string      `json:"key_id,omitempty"`
	Node   *NodeInfo   `json:"node,omitempty"`
	NodeID string      `json:"node_id,omitempty"`

	Schema       *theeye.Schema       `json:"schema,omitempty"`
	Revalidation *theeye.Revalidation `json:"revalidation,omitempty"`
	Config       *theeye.ConfigPatch  `json:"config,omitempty"`
	RateLimit    *theeye.RateLimit    `json:"rate_limit,omitempty"`
	FirstSeq     uint64               `json:"first_seq,omitempty"`
	Deletion     *theeye.Deletion     `json:"deletion,omitempty"`
}

// NodeInfo is what the cluster knows of one member.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

func encodeEventsEntry(dst []byte, codec log.Codec, count int, payload []byte) []byte {
	dst = append(dst, entryVersion, entryEvents, byte(codec))
	dst = binary.AppendUvarint(dst, uint64(count))
	return append(dst, payload...)
}

// eventsHeaderLen is the most bytes the events entry header takes.
const eventsHeaderLen = 3 + binary.MaxVarintLen64

func decodeEventsEntry(b []byte) (codec log.Codec, count uint32, payload []byte, err error) {
	if len(b) < 4 {
		return 0, 0, nil, errors.New("events entry: too short")
	}
	codec = log.Codec(b[2])
	c, n := binary.Uvarint(b[3:])
	if n <= 0 || c == 0 || c > 1<<31 {
		return 0, 0, nil, errors.New("events entry: bad count")
	}
	return codec, uint32(c), b[3+n:], nil
}

func encodeConfigEntry(cmd *command) ([]byte, error) {
	js, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", cmd.Op, err)
	}
	return append([]byte{entryVersion, entryConfig}, js...), nil
}
