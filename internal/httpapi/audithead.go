package httpapi

import "net/http"

// auditHead serves the audit log's head, to be kept outside the database
// as a witness ("switchback audit head"): "switchback audit verify
// --witness" later fails if the log no longer holds it.
func (a *API) auditHead(w http.ResponseWriter, _ *http.Request, _ principal) error {
	h := a.svc.AuditHead()
	writeJSON(w, http.StatusOK, struct {
		StoreID         string `json:"storeId"`
		Seq             uint64 `json:"seq"`
		Hash            string `json:"hash"`
		SnapshotVersion uint64 `json:"snapshotVersion"`
	}{h.StoreID, h.Seq, h.Hash, a.svc.State().Version})
	return nil
}
