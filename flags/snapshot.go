package flags

// Snapshot is the part of a control service snapshot that evaluation needs.
// Fields the package does not know are ignored when it is decoded, so a newer
// control service can add to it. Treat a Snapshot as immutable once built.
type Snapshot struct {
	Version uint64 `json:"version"`
	// StoreID identifies the control service's store. Versions compare
	// only within one store: a snapshot of another store (a store reset,
	// or another control service) is taken whatever its version. Empty in
	// snapshots of control services that predate it.
	StoreID string `json:"storeId,omitempty"`
	// Audit is the head of the control service's audit log when this
	// version was built. Providers keep the heads they see (with the
	// snapshot file) as witnesses that the log cannot later be cut or
	// rewritten unnoticed.
	Audit      AuditHead             `json:"audit,omitzero"`
	Migrations map[string]*Migration `json:"migrations"`
	Partners   map[string]Partner    `json:"partners"`
}

// AuditHead is the last entry of a control service's audit log: its
// sequence number and hash, and in a provider's list of witnessed heads
// the store it belongs to.
type AuditHead struct {
	StoreID string `json:"storeId,omitempty"`
	Seq     uint64 `json:"seq"`
	Hash    string `json:"hash"`
}

// Migration is one flag: its kill switch and the partners' stages.
type Migration struct {
	// Reverted is the kill switch: while on, every partner gets legacy.
	Reverted bool `json:"reverted"`
	// Stages holds each partner not at legacy; a known partner absent from it
	// is at legacy.
	Stages map[string]string `json:"stages"`
}

// Partner is a partner the control service knows.
type Partner struct {
	Name string `json:"name"`
	PSA  string `json:"psa"`
}

// Pipelines and stages as they appear in values, variants and metadata.
const (
	Legacy = "legacy"
	New    = "new"

	StageLegacy = "legacy"
	StageShadow = "shadow"
	StageNew    = "new"
	StageDone   = "done"
)

// Reasons, as OpenFeature names them.
const (
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonDisabled       = "DISABLED"
	ReasonDefault        = "DEFAULT"
	ReasonError          = "ERROR"
)

// Error codes, as OpenFeature names them.
const (
	ErrFlagNotFound        = "FLAG_NOT_FOUND"
	ErrTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ErrProviderNotReady    = "PROVIDER_NOT_READY"
	ErrParse               = "PARSE_ERROR"
)

// Resolution is the answer for one flag and one partner.
type Resolution struct {
	Value     string // the primary pipeline: Legacy or New
	Variant   string // the stage in effect: the kept stage, or legacy while reverted
	Reason    string
	ErrorCode string // set only when Reason is ReasonError
	Stage     string // the partner's kept stage, also while reverted
	Shadow    string // the pipeline run in dry-run: Legacy, New or ""
	Version   uint64 // the snapshot version that answered
}

// Evaluate resolves flag for the partner named by targetingKey. It never
// fails: errors come back as Reason ERROR with an ErrorCode and Value legacy,
// the safe answer. It does not allocate.
func (s *Snapshot) Evaluate(flag, targetingKey string) Resolution {
	if s == nil {
		return Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrProviderNotReady}
	}
	m, ok := s.Migrations[flag]
	if !ok || m == nil {
		return Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrFlagNotFound, Version: s.Version}
	}
	if targetingKey == "" {
		return Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrTargetingKeyMissing, Version: s.Version}
	}
	stage, ok := m.Stages[targetingKey]
	if !ok {
		if _, known := s.Partners[targetingKey]; !known {
			return Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDefault, Version: s.Version}
		}
		stage = StageLegacy
	}
	r := Resolution{Variant: stage, Reason: ReasonTargetingMatch, Stage: stage, Version: s.Version}
	switch stage {
	case StageLegacy:
		r.Value = Legacy
	case StageShadow:
		r.Value, r.Shadow = Legacy, New
	case StageNew:
		r.Value, r.Shadow = New, Legacy
	case StageDone:
		r.Value = New
	default:
		return Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrParse, Stage: stage, Version: s.Version}
	}
	if m.Reverted {
		r.Value, r.Shadow, r.Variant, r.Reason = Legacy, "", StageLegacy, ReasonDisabled
	}
	return r
}
