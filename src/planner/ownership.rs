//! Who changed a field last, from NetBox's own change log (issue 21): a
//! field the sync would update is the operator's when a change-log entry by
//! another user changed it after the sync's last write, and `diff::owner`
//! decides what the plan does with it.
//!
//! The plan reads the history of exactly the objects it would update (their
//! change-log entries by users other than the sync, and their journal
//! entries): `discover` runs the planners once without it to learn which
//! objects those are. A converged NetBox has none, so nothing is read; an
//! operator's edit stays known run after run, because the object keeps
//! differing from Proxmox and so keeps being asked about.
//!
//! - **The sync** is the token's NetBox user (`$.sync_user`), and any entry
//!   whose change-log message carries `CHANGELOG_MARKER` (what the host
//!   sends with every write), whoever made it.
//! - **The base** is the value before the operator's edits: the entries that
//!   changed the field are followed back from the newest while each one
//!   started from the value the next one found; a gap is a write by the sync.
//!   The newest must have left the value NetBox still holds, or the sync
//!   wrote the field since (accepting Proxmox's value makes it ours again).
//!   A value on the way that Proxmox holds now is where Proxmox last agreed
//!   with NetBox: that is the base (the field was ours again from there).
//! - **A recorded keep** is a journal entry on the object with a line
//!   `keep-netbox: <field>` (what `--keep-netbox` writes): the field is the
//!   operator's for good, whatever the change log still remembers.

use super::diff::{logged, owner, Field, Owner};
use crate::error::{ErrorCode, PlanError, Result};
use crate::input::SyncUser;
use crate::json::Path;
use crate::netbox::{self, Collection, Model, NetboxState, Object};
use crate::plan::Change;
use crate::settings::OnOperatorEdit;
use crate::vec_map::{VecMap, VecSet};
use serde_json::{json, Map, Value};

/// The history queries a plan needs, by collection: the model read and
/// the query strings (as objects) of its list requests.
pub type HistoryQueries = VecMap<&'static str, (Model, Vec<Map<String, Value>>)>;

/// The start of the change-log message of every write the host makes for a
/// plan (NetBox ≥ 4.4 records `changelog_message`).
pub const CHANGELOG_MARKER: &str = "proxbox-planner";

/// The line of a journal entry that keeps an operator's value: `keep-netbox: description`.
pub const KEEP_LINE: &str = "keep-netbox:";

/// Object ids per change-log or journal query (NetBox ORs repeated filters).
const IDS_PER_QUERY: usize = 100;

/// One operator's edit of one field, as the change log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    /// What the field held before the operator's edits: what the sync wrote.
    pub base: Value,
    pub user: Option<String>,
    pub time: Option<String>,
}

/// What the sync would change on one object, split by who owns each field.
#[derive(Default)]
pub struct Settled {
    /// Written as today.
    pub write: VecMap<String, Change>,
    /// Left to the operator (Proxmox did not change them, or a keep is recorded).
    pub owned: u64,
    /// Changed by both: `on_operator_edit` decides.
    pub conflicts: Vec<(String, Change, Edit)>,
    /// The history could not be read: not written.
    pub held: Vec<(String, Change)>,
}

enum History<'a> {
    /// `discover`'s pass: nothing read yet; the objects to ask about are collected.
    Unread,
    Read {
        /// Other users' updates, by (model, object id), oldest first.
        edits: VecMap<(String, u64), Vec<Object<'a>>>,
        /// (model, object id, field) a journal entry keeps for the operator.
        keeps: VecSet<(String, u64, String)>,
    },
    Unreadable(String),
}

pub struct Ownership<'a> {
    history: History<'a>,
    pub resolution: OnOperatorEdit,
    sync_user: Option<SyncUser>,
    /// Model name → ids of the objects whose history the plan needs.
    wanted: VecMap<&'static str, VecSet<u64>>,
    /// Field updates held because the history could not be read.
    pub held: u64,
    /// Conflicts left waiting for a choice (`ask`).
    pub pending: u64,
}

/// The history collections, as `discover` asks for them.
pub const HISTORY: [Model; 2] = [netbox::OBJECT_CHANGE, netbox::JOURNAL_ENTRY];

impl<'a> Ownership<'a> {
    /// Reads the history the host fetched; `Unread` when it has not yet.
    pub fn read(
        netbox: &NetboxState<'a>,
        sync_user: Option<SyncUser>,
        resolution: OnOperatorEdit,
    ) -> Result<Ownership<'a>> {
        let mut ownership = Ownership {
            history: History::Unread,
            resolution,
            sync_user,
            wanted: VecMap::new(),
            held: 0,
            pending: 0,
        };
        if !HISTORY.iter().any(|m| netbox.has(*m)) {
            return Ok(ownership);
        }
        let mut read = Vec::with_capacity(HISTORY.len());
        for model in HISTORY {
            if !netbox.has(model) {
                return Err(missing(model));
            }
            match netbox.collection(model)? {
                Collection::Objects(objects) => read.push(objects),
                Collection::Failed { message, .. } => {
                    ownership.history = History::Unreadable(message);
                    return Ok(ownership);
                }
            }
        }
        let journal = read.pop().unwrap_or_default();
        let changes = read.pop().unwrap_or_default();
        ownership.history = History::Read {
            edits: ownership.operator_edits(changes),
            keeps: keeps(&journal),
        };
        Ok(ownership)
    }

    fn by_sync(&self, entry: &Object) -> bool {
        let marked = entry.str("message").is_some_and(|m| m.starts_with(CHANGELOG_MARKER));
        let user = entry.fk("user");
        marked || (user.is_some() && user == self.sync_user.as_ref().map(|u| u.id))
    }

    /// Updates by other users, per object, oldest first (time, then id).
    fn operator_edits(&self, entries: Vec<Object<'a>>) -> VecMap<(String, u64), Vec<Object<'a>>> {
        let mut edits: VecMap<(String, u64), Vec<Object>> = VecMap::new();
        for entry in entries {
            let entry = &entry;
            if entry.choice("action") != Some("update") || self.by_sync(entry) {
                continue;
            }
            if let (Some(model), Some(id)) = (entry.str("changed_object_type"), entry.u64("changed_object_id")) {
                edits.entry((model.to_owned(), id)).or_default().push(*entry);
            }
        }
        for list in edits.values_mut() {
            crate::sort::sort_by(list, |a, b| (a.str("time"), a.id).cmp(&(b.str("time"), b.id)));
        }
        edits
    }

    /// Splits what the sync would change on `object` by who owns each field.
    pub fn settle(
        &mut self,
        model: Model,
        object: &Object,
        fields: &[Field],
        changes: VecMap<String, Change>,
    ) -> Settled {
        let mut settled = Settled::default();
        let kind_of = |name: &str| fields.iter().find(|f| f.name == name).map(|f| f.kind);
        for (name, change) in changes {
            let Some(kind) = kind_of(&name).filter(|k| k.can_be_operators()) else {
                settled.write.insert(name, change);
                continue;
            };
            match &self.history {
                History::Unread => {
                    self.wanted.entry(model.name).or_default().insert(object.id);
                    settled.write.insert(name, change);
                }
                History::Unreadable(_) => {
                    self.held += 1;
                    settled.held.push((name, change));
                }
                History::Read { edits, keeps } => {
                    if keeps.contains(&(model.name.to_owned(), object.id, name.clone())) {
                        settled.owned += 1;
                        continue;
                    }
                    let entries = edits.get(&(model.name.to_owned(), object.id));
                    let edit = entries.and_then(|e| last_edit(e, &name, kind, &change));
                    match edit.map(|e| (owner(&e.base, &change.before, &change.after), e)) {
                        None | Some((Owner::Sync, _)) => {
                            settled.write.insert(name, change);
                        }
                        Some((Owner::Operator, _)) => settled.owned += 1,
                        Some((Owner::Conflict, edit)) => settled.conflicts.push((name, change, edit)),
                    }
                }
            }
        }
        settled
    }

    /// After the planners ran: whether the plan needs history it was not given.
    pub fn missing(&self) -> Option<PlanError> {
        match self.history {
            History::Unread if !self.wanted.is_empty() => Some(missing(netbox::OBJECT_CHANGE)),
            _ => None,
        }
    }

    /// For `discover`: the history queries, per collection (empty when the
    /// plan updates nothing an operator could own, or has read it already).
    pub fn queries(&self) -> Result<HistoryQueries> {
        let mut queries = HistoryQueries::new();
        if self.wanted.is_empty() || !matches!(self.history, History::Unread) {
            return Ok(queries);
        }
        let user = self.sync_user.as_ref().ok_or_else(|| {
            PlanError::new(
                ErrorCode::MissingField,
                Path::ROOT.key("sync_user"),
                "the sync's NetBox user ({\"id\": ...}, from GET /api/authentication-check/) is needed to tell \
                 operators' changes from the sync's in NetBox's change log",
            )
        })?;
        for (model, ids) in &self.wanted {
            let ids: Vec<u64> = ids.iter().copied().collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let changes = json!({
                    "changed_object_type": model, "changed_object_id": chunk, "action": "update", "user_id__n": user.id,
                });
                let journal = json!({ "assigned_object_type": model, "assigned_object_id": chunk, "q": KEEP_LINE });
                for (collection, query) in [(netbox::OBJECT_CHANGE, changes), (netbox::JOURNAL_ENTRY, journal)] {
                    if let Value::Object(query) = query {
                        let (_, list) = queries
                            .entry(collection.collection)
                            .or_insert_with(|| (collection, Vec::new()));
                        list.push(query);
                    }
                }
            }
        }
        Ok(queries)
    }

    /// Why held updates were held, once per plan.
    pub fn unreadable(&self) -> Option<&str> {
        match &self.history {
            History::Unreadable(message) => Some(message),
            _ => None,
        }
    }
}

fn missing(model: Model) -> PlanError {
    PlanError::new(
        ErrorCode::MissingField,
        Path::ROOT.key("netbox").key(model.collection),
        format!(
            "the NetBox collection {} is missing: this plan updates objects an operator may have edited; \
             fetch what discover() lists (with its queries) first",
            model.collection
        ),
    )
}

/// The fields journal entries keep for the operator.
fn keeps(journal: &[Object]) -> VecSet<(String, u64, String)> {
    let mut kept = VecSet::new();
    for entry in journal {
        let (Some(model), Some(id), Some(comments)) = (
            entry.str("assigned_object_type"),
            entry.u64("assigned_object_id"),
            entry.str("comments"),
        ) else {
            continue;
        };
        for line in comments.lines() {
            if let Some(field) = line.trim().strip_prefix(KEEP_LINE) {
                kept.insert((model.to_owned(), id, field.trim().to_owned()));
            }
        }
    }
    kept
}

/// The operator's edit that left `change.before` in NetBox, if the change
/// log still has it (see the module comment).
fn last_edit(entries: &[Object], field: &str, kind: super::diff::Kind, change: &Change) -> Option<Edit> {
    let like = if change.before.is_null() {
        &change.after
    } else {
        &change.before
    };
    // A field the serialization leaves out reads as empty, as in the REST read.
    let value = |data: Option<&Value>| {
        let data = data.filter(|d| d.is_object())?;
        Some(logged(data.get(field).unwrap_or(&Value::Null), kind, like))
    };
    let changed: Vec<(Value, Value, &Object)> = entries
        .iter()
        .filter_map(|entry| {
            let before = value(entry.get("prechange_data"))?;
            let after = value(entry.get("postchange_data"))?;
            (!super::diff::same(&before, &after)).then_some((before, after, entry))
        })
        .collect();
    let ((_, newest, latest), earlier) = changed.split_last()?;
    if !super::diff::same(newest, &change.before) {
        return None;
    }
    let mut base = changed.last().map(|(before, ..)| before.clone())?;
    for (before, after, _) in earlier.iter().rev() {
        if super::diff::same(&base, &change.after) || !super::diff::same(after, &base) {
            break;
        }
        base = before.clone();
    }
    Some(Edit {
        base,
        user: latest.str("user_name").map(str::to_owned),
        time: latest.str("time").map(str::to_owned),
    })
}
