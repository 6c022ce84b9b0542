package domain

import "time"

// Cohort is an ordered, named group of a migration's partners that advance
// together. A partner is in at most one cohort of a migration.
type Cohort struct {
	Name     string   `json:"name"`
	Order    int      `json:"order"`
	Partners []string `json:"partners"`
	// Gates, when set, override the migration's gates for this cohort.
	Gates     *Gates    `json:"gates,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate checks the cohort's own fields; membership across cohorts is the
// control service's to check.
func (c Cohort) Validate() error {
	if err := CheckID("cohort", c.Name); err != nil {
		return err
	}
	if len(c.Partners) > 100000 {
		return Errorf(CodeInvalid, "a cohort holds at most 100000 partners")
	}
	seen := make(map[string]bool, len(c.Partners))
	for _, p := range c.Partners {
		if err := CheckID("partner", p); err != nil {
			return err
		}
		if seen[p] {
			return Errorf(CodeInvalid, "partner %q is listed twice in cohort %q", p, c.Name)
		}
		seen[p] = true
	}
	if c.Gates != nil {
		return c.Gates.Validate()
	}
	return nil
}
