package schema

func str(name string) *Attribute {
	return &Attribute{Name: name, Type: String, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func strExact(name string) *Attribute { a := str(name); a.CaseExact = true; return a }

func boolean(name string) *Attribute {
	return &Attribute{Name: name, Type: Boolean, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func ref(name string, types ...string) *Attribute {
	return &Attribute{Name: name, Type: Reference, CaseExact: true, ReferenceTypes: types, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func complexAttr(name string, multi bool, subs ...*Attribute) *Attribute {
	return &Attribute{Name: name, Type: Complex, MultiValued: multi, Mutability: "readWrite", Returned: "default", Uniqueness: "none", SubAttributes: subs}
}

// multiValuedStandard builds the value/display/type/primary sub-attributes
// shared by emails, phoneNumbers, ims, photos, entitlements, roles and
// x509Certificates.
func multiValuedStandard(name string, value *Attribute) *Attribute {
	return complexAttr(name, true, value, str("display"), str("type"), boolean("primary"))
}

// User is the core User schema (RFC 7643 §4.1).
var User = &Schema{
	ID:          UserURN,
	Name:        "User",
	Description: "User Account",
	Attributes: []*Attribute{
		func() *Attribute {
			a := str("userName")
			a.Required = true
			a.Uniqueness = "server"
			return a
		}(),
		complexAttr("name", false, str("formatted"), str("familyName"), str("givenName"),
			str("middleName"), str("honorificPrefix"), str("honorificSuffix")),
		str("displayName"),
		str("nickName"),
		ref("profileUrl", "external"),
		str("title"),
		str("userType"),
		str("preferredLanguage"),
		str("locale"),
		str("timezone"),
		boolean("active"),
		func() *Attribute {
			a := strExact("password")
			a.Mutability = "writeOnly"
			a.Returned = "never"
			return a
		}(),
		multiValuedStandard("emails", str("value")),
		multiValuedStandard("phoneNumbers", str("value")),
		multiValuedStandard("ims", str("value")),
		multiValuedStandard("photos", ref("value", "external")),
		complexAttr("addresses", true, str("formatted"), str("streetAddress"), str("locality"),
			str("region"), str("postalCode"), str("country"), str("type"), boolean("primary")),
		func() *Attribute {
			a := complexAttr("groups", true,
				func() *Attribute { v := strExact("value"); v.Mutability = "readOnly"; return v }(),
				func() *Attribute { v := ref("$ref", "User", "Group"); v.Mutability = "readOnly"; return v }(),
				func() *Attribute { v := str("display"); v.Mutability = "readOnly"; return v }(),
				func() *Attribute { v := str("type"); v.Mutability = "readOnly"; return v }(),
			)
			a.Mutability = "readOnly"
			return a
		}(),
		multiValuedStandard("entitlements", str("value")),
		multiValuedStandard("roles", str("value")),
		multiValuedStandard("x509Certificates", &Attribute{Name: "value", Type: Binary, CaseExact: true, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}),
	},
}

// Group is the core Group schema (RFC 7643 §4.2).
var Group = &Schema{
	ID:          GroupURN,
	Name:        "Group",
	Description: "Group",
	Attributes: []*Attribute{
		func() *Attribute {
			a := str("displayName")
			a.Required = true
			a.Uniqueness = "server"
			return a
		}(),
		func() *Attribute {
			v := strExact("value")
			v.Mutability = "immutable"
			r := ref("$ref", "User", "Group")
			r.Mutability = "immutable"
			d := str("display")
			d.Mutability = "readOnly"
			t := str("type")
			t.Mutability = "immutable"
			return complexAttr("members", true, v, r, d, t)
		}(),
	},
}

// EnterpriseUser is the Enterprise User extension (RFC 7643 §4.3).
var EnterpriseUser = &Schema{
	ID:          EnterpriseUserURN,
	Name:        "EnterpriseUser",
	Description: "Enterprise User",
	Attributes: []*Attribute{
		str("employeeNumber"),
		str("costCenter"),
		str("organization"),
		str("division"),
		str("department"),
		complexAttr("manager", false,
			strExact("value"),
			ref("$ref", "User"),
			func() *Attribute { d := str("displayName"); d.Mutability = "readOnly"; return d }(),
		),
	},
}

// UserType is the User resource type, served at /Users.
var UserType = &ResourceType{Name: "User", Endpoint: "/Users", Core: User, Extensions: []*Schema{EnterpriseUser, Teammate}}

// Teammate is scimd's read-only extension of a User: the teammate's role,
// access and exclusion as the active policy decided them, with the
// decision's reasons and the policy revision. The service provider sets
// it; values a client writes are ignored.
var Teammate = &Schema{
	ID:          TeammateURN,
	Name:        "Teammate",
	Description: "The application role, access and exclusion scimd's policy decided for this user (read-only)",
	Attributes: []*Attribute{
		readOnly(str("role"), "The decided application role; absent when none"),
		readOnly(boolean("access"), "Whether the teammate has access to the application"),
		readOnly(boolean("excluded"), "Whether the policy excludes the teammate from provisioning"),
		func() *Attribute {
			a := readOnly(str("reasons"), "Why the policy decided so, e.g. the group that gave the role")
			a.MultiValued = true
			return a
		}(),
		readOnly(strExact("policyRevision"), "Revision of the policy that made the decision"),
	},
}

func readOnly(a *Attribute, description string) *Attribute {
	a.Mutability = "readOnly"
	a.Description = description
	return a
}

// GroupType is the Group resource type, served at /Groups.
var GroupType = &ResourceType{Name: "Group", Endpoint: "/Groups", Core: Group}

// ResourceTypes lists the served resource types, User first (some clients,
// and Microsoft's test collection, rely on that order).
func ResourceTypes() []*ResourceType { return []*ResourceType{UserType, GroupType} }

// All lists every served schema.
func All() []*Schema { return []*Schema{User, Group, EnterpriseUser, Teammate} }
