package review

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
)

// PageFunc returns up to limit audit events with Seq > after, in sequence
// order. Both the store (through the admin API) and an offline reader of a
// stopped server's data directory provide one.
type PageFunc func(ctx context.Context, after uint64, limit int) ([]audit.Event, error)

// ChainHead names one event of the chain by sequence number and hash. A
// head recorded earlier (printed by `scimd audit verify`, kept in a SIEM or
// a ticket) lets a later verification prove the log still contains that
// event unchanged: the chain alone cannot reveal that its newest events
// were removed or rewritten together.
type ChainHead struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time,omitzero"`
}

// String is "SEQ:HASH", the form ParseChainHead reads.
func (h ChainHead) String() string { return fmt.Sprintf("%d:%s", h.Seq, h.Hash) }

// ParseChainHead reads "SEQ:HASH".
func ParseChainHead(s string) (ChainHead, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 || len(hash) != 64 {
		return ChainHead{}, fmt.Errorf("chain head %q: want SEQ:HASH, e.g. 42:%s", s, strings.Repeat("ab", 32))
	}
	return ChainHead{Seq: seq, Hash: strings.ToLower(hash)}, nil
}

// VerifyResult is the outcome of walking the audit chain.
type VerifyResult struct {
	// OK is true when every event verified (and the expected head, if any,
	// was found unchanged).
	OK bool `json:"ok"`
	// Events is how many events verified.
	Events uint64 `json:"events"`
	// Head is the last event that verified.
	Head *ChainHead `json:"head,omitempty"`
	// BrokenAt is the sequence number of the first event that does not
	// verify, and Reason why; Broken is that event as stored.
	BrokenAt uint64       `json:"brokenAt,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Broken   *audit.Event `json:"broken,omitempty"`
	// Expected is the head the caller asked to find, when any.
	Expected *ChainHead `json:"expected,omitempty"`
}

// verifyPage is how many events Verify reads at a time.
const verifyPage = 1000

// Verify walks the whole chain from the genesis hash with audit.Verifier
// and stops at the first broken link. When expect is not nil, the event
// expect.Seq must exist with expect.Hash. err is non-nil only when the
// events could not be read; a broken chain is a result with OK false.
func Verify(ctx context.Context, page PageFunc, expect *ChainHead) (VerifyResult, error) {
	v := audit.NewVerifier()
	res := VerifyResult{Expected: expect}
	after := uint64(0)
	for {
		events, err := page(ctx, after, verifyPage)
		var corrupt *CorruptEventError
		if err != nil && !errors.As(err, &corrupt) {
			return res, fmt.Errorf("verify audit chain after event %d: %w", after, err)
		}
		for i := range events {
			e := events[i]
			if err := v.Next(e); err != nil {
				var bl *audit.BrokenLinkError
				if !errors.As(err, &bl) {
					return res, fmt.Errorf("verify audit event %d: %w", e.Seq, err)
				}
				res.BrokenAt, res.Reason, res.Broken = bl.Seq, bl.Reason, &e
				return res, nil
			}
			if expect != nil && e.Seq == expect.Seq && e.Hash != expect.Hash {
				res.BrokenAt, res.Broken = e.Seq, &e
				res.Reason = fmt.Sprintf("hash %s differs from the expected %s: the event and every later one were rewritten", e.Hash, expect.Hash)
				return res, nil
			}
			res.Events = v.Count()
			res.Head = &ChainHead{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
		}
		if corrupt != nil {
			res.BrokenAt, res.Reason = corrupt.Seq, "stored event cannot be decoded: "+corrupt.Err.Error()
			return res, nil
		}
		if len(events) < verifyPage {
			break
		}
		after = events[len(events)-1].Seq
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("verify audit chain: %w", err)
		}
	}
	if expect != nil && (res.Head == nil || res.Head.Seq < expect.Seq) {
		last := uint64(0)
		if res.Head != nil {
			last = res.Head.Seq
		}
		res.BrokenAt = expect.Seq
		res.Reason = fmt.Sprintf("the log ends at event %d, before the expected event %d: events were removed", last, expect.Seq)
		return res, nil
	}
	res.OK = true
	return res, nil
}
