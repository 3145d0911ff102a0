package app_test

import (
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/store"
)

func recordsForReopen() map[string]store.RecordDecoder { return reconcile.Records() }
