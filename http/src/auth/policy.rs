//! RBAC policy matching: compiled per-role permission rules, the configured
//! route whitelist, and normalisation of request paths before matching.
//!
//! A permission is a [`Rule`]: an HTTP method (or `*`), a regular expression
//! that must match the *whole* request path, and an [`Effect`]. A request
//! passes when its route is whitelisted ([`Whitelist::matches`]), or when one
//! of the user's roles allows it and none of them denies it
//! ([`Policy::is_allowed`]). Anything not allowed is denied.
//!
//! Paths must go through [`normalize_path`] first, so that a percent-encoded
//! or doubled slash, or a `.`/`..` segment, cannot slip past a rule.
//!
//! Every pattern is compiled as `^(?:PATTERN)$`, and must also be a complete
//! regular expression on its own: a pattern such as `/public)|(?:.*` would
//! otherwise close the wrapping group early and escape the anchors.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Largest compiled size, in bytes, allowed for one path pattern (see
/// [`RegexBuilder::size_limit`]). Real route patterns need a few KiB; this
/// rejects patterns such as `\w{20}` that compile to about 1 MiB.
pub const MAX_PATTERN_COMPILED_SIZE: usize = 256 * 1024;

/// Deepest nesting of groups and repetitions allowed in one path pattern
/// (see [`RegexBuilder::nest_limit`]).
pub const MAX_PATTERN_NESTING: u32 = 64;

/// The HTTP methods a rule may name, uppercase; a rule may also name `*`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// The method wildcard.
const ANY_METHOD: &str = "*";
/// Bucket index of rules whose method is `*`.
const ANY: usize = METHODS.len();
/// One bucket per method in [`METHODS`], plus one for `*`.
const BUCKETS: usize = METHODS.len() + 1;

/// Patterns grouped by method bucket (index into [`METHODS`], or [`ANY`]).
type Buckets<'a> = [Vec<&'a str>; BUCKETS];

/// What a matching rule does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The rule grants access, unless some deny rule also matches.
    Allow,
    /// The rule refuses access; a matching deny wins over any allow.
    Deny,
}

impl Effect {
    /// Parses `"allow"` or `"deny"` (ASCII case-insensitive, no surrounding
    /// whitespace); anything else gives `None`.
    pub fn parse(s: &str) -> Option<Effect> {
        if s.eq_ignore_ascii_case("allow") {
            Some(Effect::Allow)
        } else if s.eq_ignore_ascii_case("deny") {
            Some(Effect::Deny)
        } else {
            None
        }
    }

    /// The canonical lowercase name: `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// One permission of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// An HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS; ASCII
    /// case-insensitive) or `*` for every method.
    pub method: String,
    /// A regular expression matched against the whole normalised request
    /// path (it is anchored at both ends when compiled).
    pub path: String,
    /// Whether a match allows or denies the request.
    pub effect: Effect,
}

impl Rule {
    /// Builds a rule from its parts (not validated: see [`validate_rule`]).
    pub fn new(method: impl Into<String>, path: impl Into<String>, effect: Effect) -> Rule {
        Rule {
            method: method.into(),
            path: path.into(),
            effect,
        }
    }
}

/// Why a rule, a whitelist entry or a policy could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The method is neither a supported HTTP method nor `*`.
    #[error(
        "invalid HTTP method {0:?} (expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *)"
    )]
    InvalidMethod(String),
    /// The path pattern does not compile, cannot be anchored, or is too large.
    #[error("invalid path pattern {pattern:?}: {reason}")]
    InvalidRegex {
        /// The offending pattern, as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A whitelist entry is not of the form `"METHOD regex"`.
    #[error("invalid whitelist entry {0:?} (expected \"METHOD regex\")")]
    InvalidWhitelistEntry(String),
}

/// Checks one rule: the method is a supported HTTP method or `*`, and the
/// path pattern compiles, both on its own and anchored, within
/// [`MAX_PATTERN_COMPILED_SIZE`] and [`MAX_PATTERN_NESTING`].
pub fn validate_rule(rule: &Rule) -> Result<(), PolicyError> {
    check_rule(&rule.method, &rule.path).map(|_| ())
}

/// Validates a method and a pattern, returning the method's bucket.
fn check_rule(method: &str, pattern: &str) -> Result<usize, PolicyError> {
    let bucket = rule_bucket(method)?;
    check_pattern(pattern)?;
    Ok(bucket)
}

/// The bucket of a rule's method, `*` included.
fn rule_bucket(method: &str) -> Result<usize, PolicyError> {
    if method == ANY_METHOD {
        return Ok(ANY);
    }
    request_bucket(method).ok_or_else(|| PolicyError::InvalidMethod(method.to_owned()))
}

/// The bucket of a request's method, or `None` for a method no rule can
/// name (such a request is matched by `*` rules only).
fn request_bucket(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| m.eq_ignore_ascii_case(method))
}

/// The pattern as it is compiled: anchored to the whole path.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

fn build_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(MAX_PATTERN_COMPILED_SIZE)
        .nest_limit(MAX_PATTERN_NESTING)
        .build()
}

/// A one-line description of a regex error.
fn describe(err: &regex::Error) -> String {
    match err {
        regex::Error::CompiledTooBig(limit) => {
            format!("compiled pattern exceeds the size limit of {limit} bytes")
        }
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(text)
            .to_owned(),
        other => other.to_string(),
    }
}

fn check_pattern(pattern: &str) -> Result<(), PolicyError> {
    let invalid = |reason: String| PolicyError::InvalidRegex {
        pattern: pattern.to_owned(),
        reason,
    };
    // On its own first: this refuses patterns whose parentheses would pair
    // with the anchoring group's, like `/a)|(.*`.
    build_regex(pattern).map_err(|e| invalid(describe(&e)))?;
    // Then anchored: this refuses e.g. a trailing `(?x)` comment that would
    // swallow the closing anchor.
    build_regex(&anchored(pattern))
        .map_err(|e| invalid(format!("pattern cannot be anchored: {}", describe(&e))))?;
    Ok(())
}

/// Compiled patterns, one optional [`RegexSet`] per method bucket.
#[derive(Debug, Clone, Default)]
struct MethodSets {
    sets: [Option<RegexSet>; BUCKETS],
}

impl MethodSets {
    /// Compiles already validated patterns.
    fn build(buckets: &Buckets<'_>) -> Result<MethodSets, PolicyError> {
        let mut sets: [Option<RegexSet>; BUCKETS] = Default::default();
        for (slot, patterns) in sets.iter_mut().zip(buckets) {
            if patterns.is_empty() {
                continue;
            }
            let set = RegexSetBuilder::new(patterns.iter().map(|p| anchored(p)))
                .size_limit(MAX_PATTERN_COMPILED_SIZE.saturating_mul(patterns.len()))
                .nest_limit(MAX_PATTERN_NESTING)
                .build()
                .map_err(|e| PolicyError::InvalidRegex {
                    pattern: patterns.join(" | "),
                    reason: describe(&e),
                })?;
            *slot = Some(set);
        }
        Ok(MethodSets { sets })
    }

    /// Whether a pattern of the request method's bucket, or of the `*`
    /// bucket, matches the path.
    fn matches(&self, method: &str, path: &str) -> bool {
        let matches_in =
            |bucket: usize| self.sets[bucket].as_ref().is_some_and(|s| s.is_match(path));
        request_bucket(method).is_some_and(matches_in) || matches_in(ANY)
    }
}

/// One role's compiled rules.
#[derive(Debug, Clone, Default)]
struct RoleSets {
    allow: MethodSets,
    deny: MethodSets,
}

/// Validated patterns of one role, before compilation.
#[derive(Default)]
struct PendingRole<'a> {
    allow: Buckets<'a>,
    deny: Buckets<'a>,
}

/// An immutable compiled snapshot of every role's rules.
///
/// Each role holds one [`RegexSet`] per (method bucket, effect): one bucket
/// per HTTP method and one for `*` rules, which apply to every method. Role
/// names are case-sensitive; request methods are ASCII case-insensitive.
/// A `GET` rule does not cover `HEAD`. A request whose method no rule can
/// name (e.g. `TRACE`) is matched by `*` rules only.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: HashMap<String, RoleSets>,
}

impl Policy {
    /// Validates and compiles the rules of every role. A role name given
    /// more than once gets the rules of all its entries. Fails on the first
    /// invalid rule.
    pub fn compile<'a>(
        roles: impl IntoIterator<Item = (&'a str, &'a [Rule])>,
    ) -> Result<Policy, PolicyError> {
        let mut pending: HashMap<&'a str, PendingRole<'a>> = HashMap::new();
        for (role, rules) in roles {
            let entry = pending.entry(role).or_default();
            for rule in rules {
                let bucket = check_rule(&rule.method, &rule.path)?;
                let buckets = match rule.effect {
                    Effect::Allow => &mut entry.allow,
                    Effect::Deny => &mut entry.deny,
                };
                buckets[bucket].push(rule.path.as_str());
            }
        }
        let roles = pending
            .into_iter()
            .map(|(name, role)| {
                let sets = RoleSets {
                    allow: MethodSets::build(&role.allow)?,
                    deny: MethodSets::build(&role.deny)?,
                };
                Ok((name.to_owned(), sets))
            })
            .collect::<Result<HashMap<_, _>, PolicyError>>()?;
        Ok(Policy { roles })
    }

    /// A policy with no roles: it allows nothing.
    pub fn empty() -> Policy {
        Policy::default()
    }

    /// True when some role in `roles` allows (`method`, `path`) and no role
    /// in `roles` denies it. Unknown role names contribute nothing, so an
    /// empty or all-unknown `roles` is denied. `path` must already be
    /// normalised (see [`normalize_path`]).
    pub fn is_allowed<S: AsRef<str>>(&self, roles: &[S], method: &str, path: &str) -> bool {
        let mut allowed = false;
        for role in roles {
            let Some(sets) = self.roles.get(role.as_ref()) else {
                continue;
            };
            if sets.deny.matches(method, path) {
                return false;
            }
            allowed = allowed || sets.allow.matches(method, path);
        }
        allowed
    }
}

/// Routes open to everyone, from configuration entries `"METHOD regex"`.
///
/// Methods and patterns follow the same rules as a [`Rule`]'s: `*` matches
/// every method, and each pattern must match the whole normalised path.
#[derive(Debug, Clone, Default)]
pub struct Whitelist {
    sets: MethodSets,
}

impl Whitelist {
    /// Parses entries `"METHOD regex"`. Surrounding whitespace is ignored and
    /// the method is split from the pattern at the first run of whitespace;
    /// the rest, inner whitespace included, is the pattern. An entry without
    /// a pattern is an [`PolicyError::InvalidWhitelistEntry`].
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Whitelist, PolicyError> {
        let mut buckets = Buckets::default();
        for entry in entries {
            let entry = entry.as_ref();
            let (method, pattern) = entry
                .trim()
                .split_once(char::is_whitespace)
                .map(|(method, rest)| (method, rest.trim_start()))
                .filter(|(_, pattern)| !pattern.is_empty())
                .ok_or_else(|| PolicyError::InvalidWhitelistEntry(entry.to_owned()))?;
            let bucket = check_rule(method, pattern)?;
            buckets[bucket].push(pattern);
        }
        Ok(Whitelist {
            sets: MethodSets::build(&buckets)?,
        })
    }

    /// Whether some entry matches (`method`, `path`); `method` is ASCII
    /// case-insensitive and `path` must already be normalised.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.sets.matches(method, path)
    }
}

/// The request path cannot be matched safely and must be refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed request path")]
pub struct MalformedPath;

/// Normalises a raw request path (as received, still percent-encoded,
/// without the query string) for matching.
///
/// The path is percent-decoded once and refused when it:
/// - does not start with a literal `/`;
/// - is not valid UTF-8 once decoded (this includes overlong encodings);
/// - contains a control character (ASCII or not, NUL included), a backslash,
///   or a `%` left after decoding (double encoding such as `%252F`, which
///   also refuses an encoded literal `%`);
/// - has an empty segment (`//`, `%2F%2F`), except that one literal trailing
///   slash is allowed (`/docs/`): it is matched as it is, so a rule for
///   `/a/b` does not cover `/a/b/` (and the router treats them apart too);
/// - has a `.` or `..` segment, encoded (`%2e%2e`) or not.
///
/// An encoded slash becomes a real one, so `/api/v1/admin%2Fusers` is
/// matched as `/api/v1/admin/users`. Otherwise the decoded path is returned.
pub fn normalize_path(raw: &str) -> Result<String, MalformedPath> {
    if !raw.starts_with('/') {
        return Err(MalformedPath);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| MalformedPath)?;
    if decoded
        .chars()
        .any(|c| c.is_control() || c == '%' || c == '\\')
    {
        return Err(MalformedPath);
    }
    let rest = decoded.strip_prefix('/').ok_or(MalformedPath)?;
    // One trailing slash, only when it was sent literally (an encoded one is refused).
    let rest = match rest.strip_suffix('/') {
        Some(inner) if raw.ends_with('/') && !inner.is_empty() => inner,
        _ => rest,
    };
    if !rest.is_empty()
        && rest
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(MalformedPath);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(method: &str, path: &str) -> Rule {
        Rule::new(method, path, Effect::Allow)
    }

    fn deny(method: &str, path: &str) -> Rule {
        Rule::new(method, path, Effect::Deny)
    }

    fn policy(roles: &[(&str, &[Rule])]) -> Policy {
        Policy::compile(roles.iter().copied()).expect("test policy compiles")
    }

    fn invalid_regex(result: Result<(), PolicyError>, pattern: &str) {
        match result {
            Err(PolicyError::InvalidRegex { pattern: p, reason }) => {
                assert_eq!(p, pattern);
                assert!(!reason.is_empty());
                assert!(!reason.contains('\n'), "one-line reason: {reason:?}");
            }
            other => panic!("expected InvalidRegex for {pattern:?}, got {other:?}"),
        }
    }

    // ---- Effect and Rule ----

    #[test]
    fn effect_parses_and_prints() {
        assert_eq!(Effect::parse("allow"), Some(Effect::Allow));
        assert_eq!(Effect::parse("deny"), Some(Effect::Deny));
        assert_eq!(Effect::parse("DENY"), Some(Effect::Deny));
        assert_eq!(Effect::parse("Allow"), Some(Effect::Allow));
        for bad in ["", "permit", "allowed", " allow", "deny ", "*"] {
            assert_eq!(Effect::parse(bad), None, "{bad:?}");
        }
        for effect in [Effect::Allow, Effect::Deny] {
            assert_eq!(Effect::parse(effect.as_str()), Some(effect));
        }
        assert_eq!(Effect::Allow.as_str(), "allow");
        assert_eq!(Effect::Deny.as_str(), "deny");
    }

    // ---- validate_rule ----

    #[test]
    fn validate_rule_accepts_every_method_and_star_in_any_case() {
        for method in METHODS {
            assert_eq!(validate_rule(&allow(method, "/x")), Ok(()));
            let lower = method.to_ascii_lowercase();
            assert_eq!(validate_rule(&allow(&lower, "/x")), Ok(()));
        }
        assert_eq!(validate_rule(&deny("*", "/api/v1/.*")), Ok(()));
        assert_eq!(
            validate_rule(&allow("GET", r"/api/v1/products/[^/]+/reviews(/\d+)?")),
            Ok(())
        );
    }

    #[test]
    fn validate_rule_rejects_invalid_methods() {
        for method in [
            "", "FETCH", "TRACE", "CONNECT", " GET", "GET ", "**", "GET,POST", "ALL",
        ] {
            assert_eq!(
                validate_rule(&allow(method, "/x")),
                Err(PolicyError::InvalidMethod(method.to_owned())),
                "{method:?}"
            );
        }
    }

    #[test]
    fn validate_rule_rejects_invalid_regex() {
        for pattern in ["(", "/api/[a-", "/api/v1/(?P<x", "*", "/x{2,1}", r"/x\"] {
            invalid_regex(validate_rule(&allow("GET", pattern)), pattern);
        }
    }

    #[test]
    fn validate_rule_rejects_patterns_escaping_the_anchoring_group() {
        let pattern = "/public)|(?:.*";
        // Naively wrapped, this compiles and matches every path.
        let naive = Regex::new(&format!("^(?:{pattern})$")).expect("naive wrap compiles");
        assert!(naive.is_match("/api/v1/admin/users"));
        invalid_regex(validate_rule(&allow("GET", pattern)), pattern);
        // A trailing x-mode comment would swallow the closing anchor.
        invalid_regex(validate_rule(&allow("GET", "(?x)/public#")), "(?x)/public#");
        assert!(Policy::compile([("r", &[allow("*", pattern)][..])]).is_err());
    }

    #[test]
    fn validate_rule_rejects_oversized_and_deeply_nested_patterns() {
        invalid_regex(validate_rule(&allow("GET", r"\w{20}")), r"\w{20}");
        invalid_regex(
            validate_rule(&allow("GET", r"(a{100}){100}")),
            r"(a{100}){100}",
        );
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(
            Regex::new(&deep).is_ok(),
            "within the crate's default limits"
        );
        invalid_regex(validate_rule(&allow("GET", &deep)), &deep);
    }

    // ---- Policy::compile ----

    #[test]
    fn compile_rejects_invalid_rules_in_any_role() {
        let good = [allow("GET", "/api/v1/products")];
        let bad_regex = [allow("GET", "/ok"), deny("DELETE", "/api/(v1")];
        let result = Policy::compile([("customer", &good[..]), ("admin", &bad_regex[..])]);
        assert!(
            matches!(&result, Err(PolicyError::InvalidRegex { pattern, .. }) if pattern == "/api/(v1"),
            "{result:?}"
        );
        let bad_method = [allow("FETCH", "/ok")];
        assert_eq!(
            Policy::compile([("customer", &good[..]), ("admin", &bad_method[..])]).err(),
            Some(PolicyError::InvalidMethod("FETCH".to_owned()))
        );
    }

    #[test]
    fn compile_of_no_roles_and_empty_policy_allow_nothing() {
        let none: [(&str, &[Rule]); 0] = [];
        let compiled = Policy::compile(none).expect("empty compiles");
        for p in [compiled, Policy::empty(), Policy::default()] {
            assert!(!p.is_allowed(&["admin"], "GET", "/"));
            assert!(!p.is_allowed(&["admin"], "GET", "/api/v1/products"));
        }
    }

    // ---- anchoring ----

    #[test]
    fn patterns_match_the_whole_path_only() {
        let p = policy(&[("customer", &[allow("GET", "/api/v1/cart")])]);
        let roles = ["customer"];
        assert!(p.is_allowed(&roles, "GET", "/api/v1/cart"));
        assert!(!p.is_allowed(&roles, "GET", "/api/v1/cart/items"));
        assert!(!p.is_allowed(&roles, "GET", "/x/api/v1/cart"));
        assert!(!p.is_allowed(&roles, "GET", "/api/v1/carts"));
        assert!(!p.is_allowed(&roles, "GET", "/api/v1/car"));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        // `^/a|/b$` would match "/a/x" and "/x/b"; `^(?:/a|/b)$` must not.
        let p = policy(&[("r", &[allow("GET", "/a|/b")])]);
        assert!(p.is_allowed(&["r"], "GET", "/a"));
        assert!(p.is_allowed(&["r"], "GET", "/b"));
        assert!(!p.is_allowed(&["r"], "GET", "/a/x"));
        assert!(!p.is_allowed(&["r"], "GET", "/x/b"));
        assert!(!p.is_allowed(&["r"], "GET", "/x/a"));
    }

    #[test]
    fn anchoring_holds_for_patterns_with_their_own_anchors_and_flags() {
        let p = policy(&[(
            "r",
            &[
                allow("GET", "(?m)^/m$"),
                allow("GET", "/opt(/.*)?"),
                allow("GET", "^/own$"),
            ],
        )]);
        assert!(p.is_allowed(&["r"], "GET", "/m"));
        assert!(!p.is_allowed(&["r"], "GET", "/m/x"));
        assert!(p.is_allowed(&["r"], "GET", "/opt"));
        assert!(p.is_allowed(&["r"], "GET", "/opt/a/b"));
        assert!(!p.is_allowed(&["r"], "GET", "/options"));
        assert!(p.is_allowed(&["r"], "GET", "/own"));
        assert!(!p.is_allowed(&["r"], "GET", "/own/x"));
    }

    // ---- deny wins ----

    #[test]
    fn deny_wins_within_one_role() {
        let p = policy(&[(
            "customer",
            &[
                allow("*", "/api/v1/.*"),
                deny("DELETE", "/api/v1/products/.*"),
            ],
        )]);
        let roles = ["customer"];
        assert!(p.is_allowed(&roles, "GET", "/api/v1/products/7"));
        assert!(p.is_allowed(&roles, "DELETE", "/api/v1/cart/items/3"));
        assert!(!p.is_allowed(&roles, "DELETE", "/api/v1/products/7"));
    }

    #[test]
    fn deny_wins_regardless_of_rule_order_and_of_method_bucket() {
        // Deny listed before allow, and a `*` deny against a specific allow.
        let p = policy(&[(
            "r",
            &[
                deny("*", "/api/v1/admin(/.*)?"),
                allow("GET", "/api/v1/admin/users"),
            ],
        )]);
        assert!(!p.is_allowed(&["r"], "GET", "/api/v1/admin/users"));
        // A specific deny against a `*` allow.
        let p = policy(&[("r", &[allow("*", "/x"), deny("POST", "/x")])]);
        assert!(p.is_allowed(&["r"], "GET", "/x"));
        assert!(!p.is_allowed(&["r"], "POST", "/x"));
    }

    #[test]
    fn deny_wins_across_roles_in_any_order() {
        let p = policy(&[
            ("staff", &[allow("*", "/api/v1/.*")]),
            ("suspended", &[deny("*", "/api/v1/orders(/.*)?")]),
        ]);
        assert!(p.is_allowed(&["staff"], "POST", "/api/v1/orders"));
        assert!(!p.is_allowed(&["staff", "suspended"], "POST", "/api/v1/orders"));
        assert!(!p.is_allowed(&["suspended", "staff"], "POST", "/api/v1/orders"));
        assert!(!p.is_allowed(&["staff", "suspended"], "GET", "/api/v1/orders/9"));
        // The deny is scoped to its pattern.
        assert!(p.is_allowed(&["staff", "suspended"], "GET", "/api/v1/products"));
        // A deny alone allows nothing.
        assert!(!p.is_allowed(&["suspended"], "GET", "/api/v1/products"));
    }

    #[test]
    fn duplicate_role_entries_are_merged() {
        let p = policy(&[
            ("customer", &[allow("*", "/api/v1/.*")]),
            ("customer", &[deny("*", "/api/v1/admin/.*")]),
        ]);
        assert!(p.is_allowed(&["customer"], "GET", "/api/v1/cart"));
        assert!(!p.is_allowed(&["customer"], "GET", "/api/v1/admin/users"));
    }

    // ---- methods ----

    #[test]
    fn star_matches_every_method_and_specific_only_its_own() {
        let p = policy(&[
            ("specific", &[allow("GET", "/x")]),
            ("any", &[allow("*", "/x")]),
        ]);
        for method in METHODS {
            assert_eq!(
                p.is_allowed(&["specific"], method, "/x"),
                method == "GET",
                "{method}"
            );
            assert!(p.is_allowed(&["any"], method, "/x"), "{method}");
        }
        // GET does not imply HEAD.
        assert!(!p.is_allowed(&["specific"], "HEAD", "/x"));
        // A method no rule can name is matched by `*` rules only.
        for method in ["TRACE", "PROPFIND", "*", ""] {
            assert!(!p.is_allowed(&["specific"], method, "/x"), "{method:?}");
            assert!(p.is_allowed(&["any"], method, "/x"), "{method:?}");
        }
    }

    #[test]
    fn request_and_rule_methods_are_case_insensitive() {
        let p = policy(&[(
            "r",
            &[
                allow("GET", "/g"),
                allow("post", "/p"),
                allow("*", "/d"),
                deny("Delete", "/d"),
            ],
        )]);
        for method in ["GET", "get", "Get", "gEt"] {
            assert!(p.is_allowed(&["r"], method, "/g"), "{method}");
        }
        for method in ["POST", "post"] {
            assert!(p.is_allowed(&["r"], method, "/p"), "{method}");
        }
        assert!(!p.is_allowed(&["r"], "POST", "/g"));
        // A lowercase method must not dodge a deny.
        for method in ["DELETE", "delete", "DeLeTe"] {
            assert!(!p.is_allowed(&["r"], method, "/d"), "{method}");
        }
        assert!(p.is_allowed(&["r"], "put", "/d"));
    }

    // ---- roles ----

    #[test]
    fn unknown_roles_contribute_nothing() {
        let p = policy(&[
            ("customer", &[allow("GET", "/api/v1/cart")]),
            ("banned", &[deny("*", ".*")]),
            ("idle", &[]),
        ]);
        assert!(!p.is_allowed(&["ghost"], "GET", "/api/v1/cart"));
        assert!(!p.is_allowed(&["idle"], "GET", "/api/v1/cart"));
        assert!(p.is_allowed(&["ghost", "customer"], "GET", "/api/v1/cart"));
        assert!(p.is_allowed(&["customer", "ghost", "idle"], "GET", "/api/v1/cart"));
        // Role names are case-sensitive.
        assert!(!p.is_allowed(&["Customer"], "GET", "/api/v1/cart"));
        assert!(p.is_allowed(&["customer", "BANNED"], "GET", "/api/v1/cart"));
        assert!(!p.is_allowed(&["customer", "banned"], "GET", "/api/v1/cart"));
    }

    #[test]
    fn empty_roles_are_denied() {
        let p = policy(&[("everyone", &[allow("*", ".*")])]);
        assert!(p.is_allowed(&["everyone"], "GET", "/api/v1/cart"));
        let none: &[&str] = &[];
        assert!(!p.is_allowed(none, "GET", "/api/v1/cart"));
        let owned: Vec<String> = Vec::new();
        assert!(!p.is_allowed(&owned, "GET", "/"));
        let owned = vec!["everyone".to_owned()];
        assert!(p.is_allowed(&owned, "GET", "/"));
    }

    // ---- Whitelist ----

    #[test]
    fn whitelist_parses_and_matches_good_entries() {
        let w = Whitelist::parse(&[
            "POST /api/v1/users",
            "GET /api/v1/products(/.*)?",
            "* /healthz",
            "  get \t /lower  ",
            "GET /with space",
        ])
        .expect("whitelist parses");
        assert!(w.matches("POST", "/api/v1/users"));
        assert!(w.matches("post", "/api/v1/users"));
        assert!(!w.matches("GET", "/api/v1/users"));
        assert!(!w.matches("POST", "/api/v1/users/1"));
        assert!(!w.matches("POST", "/x/api/v1/users"));
        assert!(w.matches("GET", "/api/v1/products"));
        assert!(w.matches("GET", "/api/v1/products/42/reviews"));
        assert!(!w.matches("GET", "/api/v1/productsx"));
        assert!(!w.matches("DELETE", "/api/v1/products/42"));
        for method in ["GET", "POST", "DELETE", "HEAD", "OPTIONS", "TRACE"] {
            assert!(w.matches(method, "/healthz"), "{method}");
        }
        assert!(!w.matches("GET", "/healthz/x"));
        assert!(w.matches("GET", "/lower"));
        assert!(!w.matches("GET", "/lower "));
        assert!(w.matches("GET", "/with space"));
    }

    #[test]
    fn whitelist_without_entries_matches_nothing() {
        let none: &[&str] = &[];
        let w = Whitelist::parse(none).expect("empty whitelist parses");
        assert!(!w.matches("GET", "/"));
        assert!(!Whitelist::default().matches("GET", "/healthz"));
    }

    #[test]
    fn whitelist_rejects_entries_without_a_regex() {
        for entry in ["", "   ", "GET", "GET   ", "\tPOST\t", "/api/v1/users"] {
            assert_eq!(
                Whitelist::parse(&[entry]).err(),
                Some(PolicyError::InvalidWhitelistEntry(entry.to_owned())),
                "{entry:?}"
            );
        }
    }

    #[test]
    fn whitelist_rejects_bad_methods_and_regexes() {
        for (entry, method) in [
            ("FETCH /x", "FETCH"),
            ("/api /x", "/api"),
            ("GET,POST /x", "GET,POST"),
        ] {
            assert_eq!(
                Whitelist::parse(&["* /healthz", entry]).err(),
                Some(PolicyError::InvalidMethod(method.to_owned())),
                "{entry:?}"
            );
        }
        let result = Whitelist::parse(&["GET /api/(v1"]);
        assert!(
            matches!(&result, Err(PolicyError::InvalidRegex { pattern, .. }) if pattern == "/api/(v1"),
            "{result:?}"
        );
        assert!(Whitelist::parse(&["GET /public)|(?:.*"]).is_err());
    }

    #[test]
    fn whitelist_accepts_owned_strings() {
        let entries = vec!["* /healthz".to_owned()];
        let w = Whitelist::parse(&entries).expect("parses");
        assert!(w.matches("GET", "/healthz"));
    }

    // ---- normalize_path ----

    fn normalized(raw: &str) -> String {
        normalize_path(raw).unwrap_or_else(|_| panic!("{raw:?} should normalise"))
    }

    fn malformed(raw: &str) {
        assert_eq!(normalize_path(raw), Err(MalformedPath), "{raw:?}");
    }

    #[test]
    fn normalize_keeps_ordinary_paths() {
        for raw in [
            "/",
            "/api/v1/cart",
            "/api/v1/products/42/reviews",
            "/.well-known/x",
            "/a/..b/c.",
            "/café",
        ] {
            assert_eq!(normalized(raw), raw);
        }
        assert_eq!(
            normalized("/api/v1/search/red%20shoes"),
            "/api/v1/search/red shoes"
        );
        assert_eq!(normalized("/caf%C3%A9"), "/café");
        assert_eq!(normalized("/%61pi"), "/api");
    }

    #[test]
    fn normalize_decodes_encoded_slashes_in_either_case() {
        assert_eq!(normalized("/api/v1/admin%2Fusers"), "/api/v1/admin/users");
        assert_eq!(normalized("/api/v1/admin%2fusers"), "/api/v1/admin/users");
    }

    #[test]
    fn normalize_rejects_dot_segments_plain_and_encoded() {
        for raw in [
            "/api/v1/cart/../admin/users",
            "/api/v1/./cart",
            "/..",
            "/.",
            "/api/v1/cart/..",
            "/api/v1/cart/%2e%2e/admin/users",
            "/api/v1/cart/%2E%2E/admin/users",
            "/api/v1/cart/.%2e/admin",
            "/api/v1/cart/%2e./admin",
            "/api/v1/%2e/cart",
            "/api/v1/cart%2F..%2Fadmin",
            "/api/v1/cart%2f%2e%2e%2fadmin",
        ] {
            malformed(raw);
        }
    }

    #[test]
    fn normalize_rejects_empty_segments_and_encoded_trailing_slashes() {
        assert_eq!(normalize_path("/docs/").as_deref(), Ok("/docs/"));
        assert_eq!(
            normalize_path("/api/v1/cart/").as_deref(),
            Ok("/api/v1/cart/")
        );
        for raw in [
            "//api/v1/admin",
            "/api//v1/admin",
            "/api/v1/cart//",
            "//",
            "/%2F",
            "/%2Fapi/v1/admin",
            "/api%2F%2Fv1",
            "/api%2f%2fv1",
            "/api/v1/cart%2F",
        ] {
            malformed(raw);
        }
    }

    #[test]
    fn normalize_rejects_double_encoding_and_stray_percent_signs() {
        for raw in [
            "/api/v1/admin%252Fusers",
            "/api/v1/admin%252fusers",
            "/api/v1/%252e%252e/admin",
            "/100%25",
            "/100%",
            "/a%zzb",
            "/a%2",
        ] {
            malformed(raw);
        }
    }

    #[test]
    fn normalize_rejects_control_characters_and_backslashes() {
        for raw in [
            "/api/v1/admin%00",
            "/api%00/v1",
            "/api/v1\0/admin",
            "/a%0a",
            "/a%0D%0Ab",
            "/a%09b",
            "/a\tb",
            "/a%7F",
            "/a%C2%85",
            "/api\\v1",
            "/api%5Cv1",
            "/api%5c..%5cadmin",
        ] {
            malformed(raw);
        }
    }

    #[test]
    fn normalize_rejects_invalid_utf8() {
        for raw in ["/%ff", "/a%C3", "/%c0%ae%c0%ae/admin", "/%C0%AF"] {
            malformed(raw);
        }
    }

    #[test]
    fn normalize_requires_a_leading_slash() {
        for raw in [
            "",
            "api/v1/cart",
            "%2Fapi/v1/cart",
            "%2fapi",
            "*",
            "http://shop/api",
            " /api",
        ] {
            malformed(raw);
        }
    }

    // ---- normalisation and policy together ----

    #[test]
    fn encoded_slash_cannot_bypass_an_admin_deny() {
        let p = policy(&[(
            "customer",
            &[allow("*", "/api/v1/.*"), deny("*", "/api/v1/admin(/.*)?")],
        )]);
        let raw = "/api/v1/admin%2Fusers";
        // Matched raw, the encoded slash would slip past the deny.
        assert!(p.is_allowed(&["customer"], "GET", raw));
        let path = normalized(raw);
        assert!(!p.is_allowed(&["customer"], "GET", &path));
        let path = normalized("/api/v1/admin%2fusers");
        assert!(!p.is_allowed(&["customer"], "GET", &path));
    }

    #[test]
    fn encoded_slash_keeps_admin_only_rules_admin_only() {
        let p = policy(&[
            ("customer", &[allow("GET", "/api/v1/[^/]+")]),
            ("admin", &[allow("*", "/api/v1/admin/.*")]),
        ]);
        let raw = "/api/v1/admin%2Fusers";
        // Matched raw, `[^/]+` would accept "admin%2Fusers" as one segment.
        assert!(p.is_allowed(&["customer"], "GET", raw));
        let path = normalized(raw);
        assert!(!p.is_allowed(&["customer"], "GET", &path));
        assert!(p.is_allowed(&["admin"], "GET", &path));
    }

    #[test]
    fn whitelist_prefix_cannot_be_stretched_by_dot_segments() {
        let w = Whitelist::parse(&["GET /api/v1/products(/.*)?"]).expect("parses");
        for raw in [
            "/api/v1/products/../admin/users",
            "/api/v1/products/%2e%2e/admin/users",
            "/api/v1/products/%2E%2E/admin/users",
        ] {
            // Matched raw, the whitelist would let these through.
            assert!(w.matches("GET", raw), "{raw}");
            malformed(raw);
        }
    }
}
