package theeye

import (
	"encoding/json"
	"fmt"
	"time"
)

// ClusterConfig is the cluster's replicated settings (GET/PUT /v1/config):
// the validation policy every node judges events by. It is cluster state,
// changed through Raft, so that every node, and every replay, reaches the
// same verdict; the flags of the node that bootstraps a cluster seed it.
type ClusterConfig struct {
	// MaxClockSkew is how far past its received_at an event's timestamp
	// may be before it is timestamp_in_future.
	MaxClockSkew time.Duration
	// MaxEventAge, when positive, is how far before its received_at an
	// event's timestamp may be before it is timestamp_too_old.
	MaxEventAge time.Duration
	// UnknownTypes is what becomes of an event of a type with no schema:
	// UnknownAccept or UnknownReject (it fails with unknown_event_type).
	UnknownTypes string
	// Retention, when positive, is how long events are kept after their
	// received_at: the leader then cuts the log at the first event
	// received since, and every node drops what is below the cut.
	Retention time.Duration
}

// The values of ClusterConfig.UnknownTypes.
const (
	UnknownAccept = "accept"
	UnknownReject = "reject"
)

// DefaultClusterConfig is API.md's default: 5 minutes of skew, no age
// limit, unknown types accepted.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{MaxClockSkew: 5 * time.Minute, UnknownTypes: UnknownAccept}
}

// Policy is the part of c that ParseEvent judges by.
func (c ClusterConfig) Policy() Policy {
	return Policy{MaxClockSkew: c.MaxClockSkew, MaxEventAge: c.MaxEventAge}
}

// Validate returns an *Error naming the first field that is out of range.
func (c ClusterConfig) Validate() error {
	switch {
	case c.MaxClockSkew < 0:
		return Errorf(EInvalidRequest, "max_clock_skew %s: want a duration of 0 or more", c.MaxClockSkew).WithDetail("field", "max_clock_skew")
	case c.MaxEventAge < 0:
		return Errorf(EInvalidRequest, "max_event_age %s: want a duration of 0 (no limit) or more", c.MaxEventAge).WithDetail("field", "max_event_age")
	case c.UnknownTypes != UnknownAccept && c.UnknownTypes != UnknownReject:
		return Errorf(EInvalidRequest, "unknown_types %q: want accept or reject", c.UnknownTypes).WithDetail("field", "unknown_types")
	case c.Retention < 0 || c.Retention > 0 && c.Retention < time.Second:
		return Errorf(EInvalidRequest, "retention %s: want 0s (keep for ever) or a duration of a second or more", c.Retention).WithDetail("field", "retention")
	}
	return nil
}

// configJSON is ClusterConfig on the wire: durations as Go durations.
type configJSON struct {
	MaxClockSkew string `json:"max_clock_skew"`
	MaxEventAge  string `json:"max_event_age"`
	UnknownTypes string `json:"unknown_types"`
	Retention    string `json:"retention"`
}

// MarshalJSON writes durations as Go durations ("5m0s").
func (c ClusterConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{MaxClockSkew: c.MaxClockSkew.String(), MaxEventAge: c.MaxEventAge.String(),
		UnknownTypes: c.UnknownTypes, Retention: c.Retention.String()})
}

// UnmarshalJSON reads what MarshalJSON writes; every field is required.
func (c *ClusterConfig) UnmarshalJSON(b []byte) error {
	var p ConfigPatch
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.MaxClockSkew == nil || p.MaxEventAge == nil || p.UnknownTypes == nil {
		return fmt.Errorf("cluster config %s: max_clock_skew, max_event_age and unknown_types are required", b)
	}
	*c = p.Apply(ClusterConfig{}) // a config of a version without retention keeps for ever
	return nil
}

// ConfigPatch is a change to some fields of a ClusterConfig (PUT
// /v1/config): nil fields keep their value. It is replicated as it is and
// applied to the config in force when the command is applied, so two
// changes of different fields never undo each other.
type ConfigPatch struct {
	MaxClockSkew *time.Duration
	MaxEventAge  *time.Duration
	UnknownTypes *string
	Retention    *time.Duration
}

// Apply returns c with the fields p sets.
func (p ConfigPatch) Apply(c ClusterConfig) ClusterConfig {
	if p.MaxClockSkew != nil {
		c.MaxClockSkew = *p.MaxClockSkew
	}
	if p.MaxEventAge != nil {
		c.MaxEventAge = *p.MaxEventAge
	}
	if p.UnknownTypes != nil {
		c.UnknownTypes = *p.UnknownTypes
	}
	if p.Retention != nil {
		c.Retention = *p.Retention
	}
	return c
}

// Empty reports whether p changes nothing.
func (p ConfigPatch) Empty() bool {
	return p.MaxClockSkew == nil && p.MaxEventAge == nil && p.UnknownTypes == nil && p.Retention == nil
}

// MarshalJSON writes the fields p sets, durations as Go durations.
func (p ConfigPatch) MarshalJSON() ([]byte, error) {
	m := map[string]string{}
	if p.MaxClockSkew != nil {
		m["max_clock_skew"] = p.MaxClockSkew.String()
	}
	if p.MaxEventAge != nil {
		m["max_event_age"] = p.MaxEventAge.String()
	}
	if p.UnknownTypes != nil {
		m["unknown_types"] = *p.UnknownTypes
	}
	if p.Retention != nil {
		m["retention"] = p.Retention.String()
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a patch: an object with any of the fields, durations
// as Go durations. An unknown field or a value that does not parse is an
// *Error naming the field.
func (p *ConfigPatch) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Errorf(EInvalidRequest, "the config must be a JSON object: %v", err)
	}
	var out ConfigPatch
	for k, raw := range m {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Errorf(EInvalidRequest, "%s must be a string, got %s", k, JSONKind(raw)).WithDetail("field", k)
		}
		switch k {
		case "max_clock_skew", "max_event_age", "retention":
			d, err := time.ParseDuration(s)
			if err != nil {
				return Errorf(EInvalidRequest, "%s %q: want a Go duration such as 5m0s or 24h", k, s).WithDetail("field", k)
			}
			switch k {
			case "max_clock_skew":
				out.MaxClockSkew = &d
			case "max_event_age":
				out.MaxEventAge = &d
			default:
				out.Retention = &d
			}
		case "unknown_types":
			out.UnknownTypes = &s
		default:
			return Errorf(EInvalidRequest, "unknown field %q: the config has max_clock_skew, max_event_age, unknown_types and retention", k).WithDetail("field", k)
		}
	}
	*p = out
	return nil
}

// ConfigVersion is one version of the cluster config in the cluster's
// history, placed like a schema version: it judges the events logged after
// it.
type ConfigVersion struct {
	Config ClusterConfig `json:"config"`
	// EffectiveSeq is the log's last seq when the version was applied: it
	// judges the events with seq > EffectiveSeq, until a later version.
	EffectiveSeq uint64 `json:"effective_seq"`
	// Index is the Raft index of the command that set it: a revalidation
	// with a larger ID judges by it.
	Index uint64 `json:"index"`
}
