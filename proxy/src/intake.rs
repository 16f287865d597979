//! The intake decision (PROTOCOL.md §3.6), free of I/O: for a batch of raw messages, which are
//! stored (complete with tenant, account and sender) and which are refused, with typed reasons.
//!
//! It runs in two steps around the two reads the store makes for it: [`place`] normalises each
//! message and finds the tenant it is filed under (then the store reads those tenants' accounts
//! and the rows that already exist under the placed ids); [`decide`] resolves accounts and
//! existing rows into a [`Plan`]. The store writes the plan in one transaction and decides
//! nothing; every REST route and inline sync messages go through here.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::model::submit::{self, Draft};

/// Where a batch of messages comes from, which decides their tenant.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Tenant for messages that name none (the request's `tenant_id` or the token's tenant).
    pub default_tenant: Option<&'a str>,
    /// When set, every message must belong to this tenant (a tenant token, or the syncing
    /// tenant for inline messages); another value is `tenant mismatch`.
    pub forced_tenant: Option<&'a str>,
    /// Priority for messages with an invalid one (already normalised).
    pub default_priority: i64,
    /// Size limits of one message (recipients, headers, subject).
    pub limits: submit::Limits,
}

/// Why a message is refused. Its text ([`Reason::as_str`]) is the contract's reason string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The message itself is malformed: the normaliser's reason (`missing id`, `invalid to
    /// address`, `invalid attachment: …`).
    Invalid(String),
    /// It names a tenant other than the caller's own.
    TenantMismatch,
    /// It names no tenant and the request gives none.
    MissingTenant,
    /// Its tenant does not exist.
    TenantNotFound,
    /// The account it names is not one of its tenant's.
    AccountNotFound,
    /// It names no account and its tenant has none.
    MissingAccount,
    /// It has no `from` and its account no `sender_email`.
    MissingFrom,
    /// A message with this id was already sent.
    AlreadySent,
    /// A message with this id is being sent right now.
    InProgress,
}

impl Reason {
    /// The contract's reason string.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Invalid(why) => why,
            Reason::TenantMismatch => "tenant mismatch",
            Reason::MissingTenant => "missing tenant_id",
            Reason::TenantNotFound => "tenant not found",
            Reason::AccountNotFound => "account not found for tenant",
            Reason::MissingAccount => "missing account_id",
            Reason::MissingFrom => "missing from",
            Reason::AlreadySent => "already sent",
            Reason::InProgress => "in progress",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The message's id, when it had one.
    pub id: Option<String>,
    /// Why.
    pub reason: Reason,
}

/// The account a message may be sent through, as far as intake needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// Account id.
    pub id: String,
    /// Primary key.
    pub pk: String,
    /// From for messages that give none.
    pub sender_email: Option<String>,
}

/// An existing tenant's default account and accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantAccounts {
    /// `default_account_id`.
    pub default_account_id: Option<String>,
    /// Its accounts.
    pub accounts: Vec<AccountRef>,
}

/// A message placed under a tenant, or refused before any lookup.
#[derive(Debug, Clone)]
pub enum Placed {
    /// Valid so far; filed under `tenant_id` if that tenant exists.
    Ready {
        /// The normalised message.
        draft: Draft,
        /// Its tenant.
        tenant_id: String,
    },
    /// Refused; filed (a row and a report) under `home` if that tenant exists.
    Refused {
        /// The refusal.
        refusal: Refusal,
        /// The tenant it is filed under: never one it merely names.
        home: Option<String>,
    },
}

impl Placed {
    /// The tenant this message is filed under, if any.
    fn tenant(&self) -> Option<&str> {
        match self {
            Placed::Ready { tenant_id, .. } => Some(tenant_id),
            Placed::Refused { home, .. } => home.as_deref(),
        }
    }

    /// The `(tenant, id)` key this message may have a row under.
    fn key(&self) -> Option<(&str, &str)> {
        match self {
            Placed::Ready { draft, tenant_id } => Some((tenant_id, &draft.id)),
            Placed::Refused { refusal, home } => Some((home.as_deref()?, refusal.id.as_deref()?)),
        }
    }
}

/// What is known of an existing row with the same `(tenant, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Sent at (Unix seconds), if sent.
    pub smtp_ts: Option<i64>,
    /// Claimed by a replica until (Unix seconds).
    pub claimed_until: Option<i64>,
}

/// A message to store (insert, or replace an unsent row with the same id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The tenant's message id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// The account it is sent through.
    pub account: AccountRef,
    /// Priority 0..3.
    pub priority: i64,
    /// Not before this Unix second.
    pub deferred_ts: Option<i64>,
    /// Batch code.
    pub batch_code: Option<String>,
    /// The stored payload, complete with `tenant_id`, `account_id` and `from` (attachment
    /// credentials still in clear: the store seals them).
    pub payload: Map<String, Value>,
}

/// A refusal recorded as a terminal `error` row, so that its tenant gets a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    /// Message id.
    pub id: String,
    /// The tenant it is filed under (exists).
    pub tenant_id: String,
    /// Why.
    pub reason: Reason,
}

/// Result of an intake, as the caller answers it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Messages queued.
    pub queued: u64,
    /// Refused messages with their reasons, in request order.
    pub rejected: Vec<Refusal>,
    /// Queued per tenant (metrics).
    pub queued_by_tenant: BTreeMap<String, u64>,
    /// Rejected per existing tenant (metrics: made-up tenants add no series).
    pub rejected_by_tenant: BTreeMap<String, u64>,
}

impl Outcome {
    /// `ok` of the response: false only if nothing was queued and some refusal is not
    /// `already sent`.
    pub fn ok(&self) -> bool {
        self.queued > 0
            || self
                .rejected
                .iter()
                .all(|r| r.reason == Reason::AlreadySent)
    }

    /// The `rejected` list of the response.
    pub fn rejected_json(&self) -> Value {
        Value::Array(
            self.rejected
                .iter()
                .map(|r| json!({"id": r.id, "reason": r.reason.as_str()}))
                .collect(),
        )
    }
}

/// What the store writes, and what the caller is told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Rows to insert or replace; a second copy of an id in one request replaces the first.
    pub inserts: Vec<NewMessage>,
    /// Refusals to record, only where no row with the id exists.
    pub refused_rows: Vec<RefusedRow>,
    /// The answer.
    pub outcome: Outcome,
}

impl Scope<'_> {
    /// The tenant a message belongs to, from the tenant it names (untrusted) and the request.
    fn tenant_for(&self, named: Option<&str>) -> Result<String, Reason> {
        match (
            named.filter(|t| !t.is_empty()),
            self.forced_tenant,
            self.default_tenant,
        ) {
            (Some(t), Some(f), _) if t != f => Err(Reason::TenantMismatch),
            (Some(t), _, _) => Ok(t.to_string()),
            (None, Some(f), _) | (None, None, Some(f)) => Ok(f.to_string()),
            (None, None, None) => Err(Reason::MissingTenant),
        }
    }
}

/// Step 1: normalises each raw message and places it under its tenant. A message naming another
/// tenant than the caller's is `tenant mismatch` whatever else is wrong with it, filed under the
/// caller's own tenant.
pub fn place(raws: &[Value], scope: &Scope<'_>) -> Vec<Placed> {
    raws.iter()
        .map(|raw| {
            let normalised = submit::normalise_limited(raw, scope.default_priority, &scope.limits);
            let (named, id) = match &normalised {
                Ok(d) => (d.tenant_id.clone(), Some(d.id.clone())),
                Err(r) => (r.tenant_id.clone(), r.id.clone()),
            };
            let refused = |reason, home| Placed::Refused {
                refusal: Refusal { id, reason },
                home,
            };
            match (normalised, scope.tenant_for(named.as_deref())) {
                (_, Err(Reason::TenantMismatch)) => refused(
                    Reason::TenantMismatch,
                    scope.forced_tenant.map(str::to_string),
                ),
                (Err(r), tenant) => refused(Reason::Invalid(r.reason), tenant.ok()),
                (Ok(_), Err(missing)) => refused(missing, None),
                (Ok(draft), Ok(tenant_id)) => Placed::Ready { draft, tenant_id },
            }
        })
        .collect()
}

/// The tenants whose accounts [`decide`] needs.
pub fn tenants(placed: &[Placed]) -> HashSet<&str> {
    placed.iter().filter_map(Placed::tenant).collect()
}

/// The `(tenant, id)` keys, under existing tenants, whose rows [`decide`] needs.
pub fn keys<'p>(
    placed: &'p [Placed],
    known: &HashMap<String, TenantAccounts>,
) -> Vec<(&'p str, &'p str)> {
    placed
        .iter()
        .filter_map(Placed::key)
        .filter(|(t, _)| known.contains_key(*t))
        .collect()
}

/// Step 2: resolves accounts (`known`: the existing tenants among [`tenants`]) and existing rows
/// (`existing`, under [`keys`]) into what to write. `now` decides whether a claim still holds.
pub fn decide(
    placed: Vec<Placed>,
    known: &HashMap<String, TenantAccounts>,
    existing: &HashMap<(String, String), Existing>,
    now: i64,
) -> Plan {
    let mut plan = Plan::default();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for p in placed {
        let (refusal, home) = match p {
            Placed::Refused { refusal, home } => (refusal, home),
            Placed::Ready { draft, tenant_id } => {
                let key = (tenant_id.clone(), draft.id.clone());
                let resolved = resolve(&draft, known.get(&tenant_id)).and_then(|account| {
                    match existing.get(&key) {
                        Some(Existing {
                            smtp_ts: Some(_), ..
                        }) => Err(Reason::AlreadySent),
                        Some(Existing {
                            claimed_until: Some(until),
                            ..
                        }) if *until > now => Err(Reason::InProgress),
                        _ => Ok(account),
                    }
                });
                match resolved {
                    Ok(account) => {
                        *plan
                            .outcome
                            .queued_by_tenant
                            .entry(tenant_id.clone())
                            .or_default() += 1;
                        let new = complete(draft, tenant_id, account);
                        match seen.get(&key) {
                            Some(&i) => plan.inserts[i] = new,
                            None => {
                                seen.insert(key, plan.inserts.len());
                                plan.inserts.push(new);
                            }
                        }
                        plan.outcome.queued += 1;
                        continue;
                    }
                    Err(reason) => {
                        if known.contains_key(&tenant_id) {
                            *plan
                                .outcome
                                .rejected_by_tenant
                                .entry(tenant_id.clone())
                                .or_default() += 1;
                        }
                        file(
                            &mut plan,
                            &draft.id,
                            Some(tenant_id),
                            &reason,
                            known,
                            existing,
                        );
                        plan.outcome.rejected.push(Refusal {
                            id: Some(draft.id),
                            reason,
                        });
                        continue;
                    }
                }
            }
        };
        if let Some(t) = home.as_deref().filter(|t| known.contains_key(*t)) {
            *plan
                .outcome
                .rejected_by_tenant
                .entry(t.to_string())
                .or_default() += 1;
        }
        if let Some(id) = refusal.id.as_deref() {
            file(&mut plan, id, home, &refusal.reason, known, existing);
        }
        plan.outcome.rejected.push(refusal);
    }
    plan
}

/// Records a refusal as a row when its tenant exists and no row has its id (a refusal for an
/// existing row's id, `already sent` for one, is answered, not recorded).
fn file(
    plan: &mut Plan,
    id: &str,
    home: Option<String>,
    reason: &Reason,
    known: &HashMap<String, TenantAccounts>,
    existing: &HashMap<(String, String), Existing>,
) {
    let Some(tenant_id) = home.filter(|t| known.contains_key(t)) else {
        return;
    };
    if existing.contains_key(&(tenant_id.clone(), id.to_string())) {
        return;
    }
    plan.refused_rows.push(RefusedRow {
        id: id.to_string(),
        tenant_id,
        reason: reason.clone(),
    });
}

/// Picks the account of a draft: the named one, else the tenant's default, else its first.
fn resolve(draft: &Draft, tenant: Option<&TenantAccounts>) -> Result<AccountRef, Reason> {
    let tenant = tenant.ok_or(Reason::TenantNotFound)?;
    let wanted = draft
        .account_id
        .as_ref()
        .or(tenant.default_account_id.as_ref());
    let account = match wanted {
        Some(id) => tenant
            .accounts
            .iter()
            .find(|a| &a.id == id)
            .ok_or(Reason::AccountNotFound)?,
        None => tenant.accounts.first().ok_or(Reason::MissingAccount)?,
    };
    if draft.from.is_none() && account.sender_email.as_deref().is_none_or(str::is_empty) {
        return Err(Reason::MissingFrom);
    }
    Ok(account.clone())
}

/// The stored form of an accepted draft.
fn complete(draft: Draft, tenant_id: String, account: AccountRef) -> NewMessage {
    let mut payload = draft.payload;
    payload.insert("tenant_id".into(), json!(tenant_id));
    payload.insert("account_id".into(), json!(account.id));
    let from = draft
        .from
        .or(account.sender_email.clone())
        .unwrap_or_default();
    payload.insert("from".into(), json!(from));
    NewMessage {
        id: draft.id,
        tenant_id,
        account,
        priority: draft.priority,
        deferred_ts: draft.deferred_ts,
        batch_code: draft.batch_code,
        payload,
    }
}

#[cfg(test)]
mod tests;
