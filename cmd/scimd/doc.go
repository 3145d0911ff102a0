// Command scimd is a SCIM 2.0 service provider that turns identity-provider
// groups into application roles through Rego policies.
package main
