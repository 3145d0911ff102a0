package app

import (
	"maps"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/engine/delivery"
	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// DeliveryConfig tunes webhook delivery (Config.Delivery); zero fields take
// the defaults of package delivery.
type DeliveryConfig = delivery.Config

// Records returns the decoders of every component's record tables, which
// every store.Open of scimd's state needs.
func Records() map[string]store.RecordDecoder {
	out := reconcile.Records()
	maps.Copy(out, delivery.Records())
	maps.Copy(out, server.Records())
	return out
}

// startDelivery mounts the change feed and webhook endpoints and starts the
// webhook dispatcher; its stop function goes to a.stops.
func (a *App) startDelivery(r *mux.Router, cfg DeliveryConfig, policy *egress.Policy) error {
	svc, err := delivery.New(delivery.Options{
		Store: a.Store, Config: cfg, Logger: a.log, Registerer: a.metrics,
		RequireAdmin: a.requireScope, Egress: policy,
	})
	if err != nil {
		return err
	}
	svc.Register(r)
	a.drains = append(a.drains, svc.Drain)
	a.stops = append(a.stops, svc.Start())
	return nil
}
