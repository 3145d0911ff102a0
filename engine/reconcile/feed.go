package reconcile

// FeedTeammate is a teammate's full current state in a feed entry.
type FeedTeammate struct {
	ID       string  `json:"id"`
	UserName string  `json:"userName"`
	Role     *string `json:"role"`
	Access   bool    `json:"access"`
	Excluded bool    `json:"excluded"`
	Deleted  bool    `json:"deleted,omitempty"`
	// UserDeleted: the SCIM user is gone but the teammate, excluded from
	// provisioning, keeps its role and access.
	UserDeleted bool     `json:"userDeleted,omitempty"`
	Reasons     []string `json:"reasons"`
}

// FeedChange is the payload of a feed entry: what changed, and the
// teammate's state after it.
type FeedChange struct {
	Changes  []string     `json:"changes"`
	From     State        `json:"from"`
	To       State        `json:"to"`
	Teammate FeedTeammate `json:"teammate"`
	Cause    Cause        `json:"cause"`
}

func feedPayload(ev *evaluation, types []string, cause Cause) FeedChange {
	tm := FeedTeammate{ID: ev.id, UserName: ev.diff.UserName, Deleted: true, Reasons: ev.diff.Reasons}
	if ev.next != nil {
		tm = feedTeammate(ev.next)
		tm.Reasons = ev.diff.Reasons
	}
	if tm.Reasons == nil {
		tm.Reasons = []string{}
	}
	return FeedChange{Changes: types, From: ev.diff.From, To: ev.diff.To, Teammate: tm, Cause: cause}
}

// feedTeammate is a teammate's state as the feed carries it.
func feedTeammate(t *Teammate) FeedTeammate {
	tm := FeedTeammate{ID: t.ID, UserName: t.UserName, Access: t.Access, Excluded: t.Excluded, UserDeleted: t.UserDeleted, Reasons: t.Reasons}
	if t.Role != "" {
		role := t.Role
		tm.Role = &role
	}
	if tm.Reasons == nil {
		tm.Reasons = []string{}
	}
	return tm
}
