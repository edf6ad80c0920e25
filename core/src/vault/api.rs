//! API v1 calls of apps: the handshake, consent and grant checks, then
//! the engine. Writes of objects are staged and applied together
//! ([`Vault::commit_staged`]); writes are answered once durable (see
//! `flush.rs`). A call that needs a space that is not open was parked by
//! the vault until it is (see `mod.rs`), so here every space a call may use
//! is open.

use std::collections::BTreeMap;

use super::apps::{ConnKind, SubKey, Subscription};
use super::commit::{Held, Staged};
use super::guard::MAX_SUBSCRIPTIONS_PER_ORIGIN;
use super::machine::{ConnId, Output};
use super::records::SpaceRecord;
use super::spaces::{Slot, SlotState};
use super::{Vault, VaultError};
use crate::data::{ObjectId, SpaceId, Value};
use crate::model::{Heads, Mutation, SpaceOptions, WriteBatch};
use crate::query::Query;
use crate::rpc::{
    answer_hello, codes, fields_from_wire, fields_to_wire, mutation_from_wire, parse_object_id,
    parse_space_id, AppIdentity, ClientMessage, Consent, IdentityInfo, Request, Response, Role,
    RpcError, SpaceInfo, StorageState, Undecodable, VaultInfo, VaultMessage, WireHeads, WireObject,
    MAX_SUBSCRIPTIONS,
};
use crate::sync::Replica;

/// Most answers one connection may have waiting for durability; more
/// calls are refused with `rpc.rate_limited` until a flush completes.
pub const MAX_AWAITING: usize = 65_536;

enum Answer {
    Now(Response),
    /// Answered once the next flush completed.
    Durable(Response),
    /// A write of objects: staged, applied with the writes around it in one
    /// engine batch (see [`Vault::commit_staged`]), answered once durable.
    Stage {
        space: SpaceId,
        batch: WriteBatch,
        created: Vec<String>,
    },
}

/// Calls that only write objects of one space: they are staged and applied
/// together with the writes around them.
fn is_object_write(method: &Request) -> bool {
    matches!(
        method,
        Request::CreateObject { .. }
            | Request::UpdateObject { .. }
            | Request::DeleteObject { .. }
            | Request::Batch { .. }
            | Request::SpliceText { .. }
    )
}

/// Calls that read only current state: a space whose documents are still
/// being read answers them (`spaces.rs`); every other call naming a space
/// waits until it is open.
pub(super) fn reads_current_state(method: &Request) -> bool {
    matches!(
        method,
        Request::ListSpaces {}
            | Request::SpaceProperties { .. }
            | Request::SpaceStatus { .. }
            | Request::GetObjects { at: None, .. }
            | Request::Query { at: None, .. }
            | Request::Subscribe { .. }
            | Request::ReadText { at: None, .. }
    )
}

/// A splice placed by its context (it reads the text first).
fn is_anchored_splice(method: &Request) -> bool {
    matches!(method, Request::SpliceText { context: Some(c), .. } if !c.is_empty())
}

/// The longest context a splice may carry, in characters.
pub const MAX_SPLICE_CONTEXT: usize = 64;

/// An object's wire form, now or as it was at `heads`.
fn wire_object(
    replica: &mut Replica,
    id: &ObjectId,
    heads: Option<&Heads>,
) -> Result<Option<WireObject>, RpcError> {
    Ok(match heads {
        None => replica.read().get(id)?.map(WireObject::from),
        Some(h) => replica.read().get_at(id, h)?.as_ref().map(WireObject::from),
    })
}

fn consent_error(consent: Consent) -> RpcError {
    let (reason, text) = match consent {
        Consent::Denied => ("denied", "the user denied this app access to the vault"),
        _ => (
            "consent_required",
            "the user has not allowed this app yet; call requestAccess() from a click to ask",
        ),
    };
    RpcError::not_authorized(text).with_detail("reason", reason)
}

impl Vault {
    /// Handles one message of an app connection.
    pub(super) fn app_message(
        &mut self,
        conn: ConnId,
        message: Result<ClientMessage, Undecodable>,
    ) {
        let Some(c) = self.apps.get(conn) else {
            return;
        };
        let ConnKind::App { origin } = &c.kind else {
            return;
        };
        let origin = origin.clone();
        let version = c.version;
        let message = match message {
            Ok(m) => m,
            Err(undecodable) => {
                self.send(conn, undecodable.into_message());
                return;
            }
        };
        match message {
            ClientMessage::Hello {
                versions,
                client,
                durability,
            } => {
                let info = VaultInfo {
                    vault: self.config.build.clone(),
                    storage: StorageState::Persistent,
                    consent: self.grants.consent_of(&origin),
                };
                let answer = answer_hello(&versions, &client, info);
                if let VaultMessage::Welcome { version, .. } = &answer {
                    if let Some(c) = self.apps.get_mut(conn) {
                        c.version = Some(*version);
                        c.durability = durability.unwrap_or_default();
                    }
                }
                self.send(conn, answer);
            }
            ClientMessage::Cancel { .. } => {
                // Calls run to completion as they arrive; a cancelled call's
                // answer is ignored by the client.
            }
            ClientMessage::Request { id, method } => {
                if version.is_none() {
                    let error = RpcError::new(
                        codes::NOT_CONNECTED,
                        "send hello first: calls are accepted after the handshake",
                    );
                    self.answer(conn, id, Err(error));
                    return;
                }
                let awaiting = self.apps.get(conn).map_or(0, |c| c.awaiting.len());
                if self
                    .apps
                    .get(conn)
                    .is_some_and(|c| c.awaiting.contains(&id))
                {
                    let error = RpcError::new(
                        codes::DUPLICATE_ID,
                        format!("call id {id} is still pending; use a new id for each call"),
                    );
                    self.answer(conn, id, Err(error));
                    return;
                }
                if awaiting >= MAX_AWAITING {
                    let error = RpcError::new(
                        codes::RATE_LIMITED,
                        format!("{awaiting} writes of this connection are waiting for storage; wait for their answers before sending more"),
                    );
                    self.answer(conn, id, Err(error));
                    return;
                }
                let space = method.space().and_then(|s| s.parse::<SpaceId>().ok());
                let anchored = is_anchored_splice(&method);
                if !is_object_write(&method) || anchored {
                    // Reads and other calls see every write before them; so
                    // does a splice that finds its place in the text.
                    self.commit_staged();
                }
                match self.call(conn, &origin, method) {
                    Ok(Answer::Now(response)) => self.answer(conn, id, Ok(response)),
                    Ok(Answer::Durable(response)) => {
                        if let Some(c) = self.apps.get_mut(conn) {
                            c.awaiting.insert(id);
                        }
                        let wrote = space.or_else(|| match &response {
                            Response::Space(info) => info.space.parse().ok(),
                            _ => None,
                        });
                        self.commit.held.push(Held::App {
                            conn,
                            id,
                            response,
                            space: wrote,
                        });
                    }
                    Ok(Answer::Stage {
                        space,
                        batch,
                        created,
                    }) => {
                        if let Some(c) = self.apps.get_mut(conn) {
                            c.awaiting.insert(id);
                        }
                        self.commit.staged.push(Staged {
                            conn,
                            id,
                            space,
                            batch,
                            created,
                        });
                        if anchored {
                            // Applied now, at the place found: a peer's
                            // change merged before the next commit would
                            // move the text under it again.
                            self.commit_staged();
                        }
                        return;
                    }
                    Err(error) => self.answer(conn, id, Err(error)),
                }
                if let Some(space) = space {
                    self.pump_events(space);
                }
            }
        }
    }

    pub(super) fn send(&mut self, conn: ConnId, message: VaultMessage) {
        self.outputs.push_back(Output::App { conn, message });
    }

    fn answer(&mut self, conn: ConnId, id: u32, result: Result<Response, RpcError>) {
        self.send(conn, VaultMessage::Response { id, result });
    }

    /// The space a call names, if the origin may use it (spaces it may not
    /// use answer like spaces that do not exist).
    fn granted_space(&self, origin: &str, text: &str) -> Result<SpaceId, RpcError> {
        let id = parse_space_id("space", text)?;
        if self.grants.allows(origin, &id) && self.spaces.contains(&id) {
            Ok(id)
        } else {
            Err(RpcError::no_such_space(text))
        }
    }

    pub(super) fn identity_info(&self) -> Result<IdentityInfo, RpcError> {
        let keys = self.keys()?;
        Ok(IdentityInfo::new(
            &keys.identity,
            &keys.device.public_key(),
            keys.record.display_name.clone(),
        ))
    }

    /// The user as the app at `origin` sees them: a pseudonym of its own,
    /// never the identity or device keys (`docs/privacy.md`).
    fn app_identity(&self, origin: &str) -> Result<AppIdentity, RpcError> {
        let keys = self.keys()?;
        Ok(AppIdentity {
            user: keys.device.app_pseudonym(origin),
            display_name: keys.record.display_name.clone(),
        })
    }

    /// A space as an app sees it: properties from its documents and the
    /// user's role from its control log (the space is open).
    fn space_info(&self, id: &SpaceId) -> Result<SpaceInfo, RpcError> {
        let replica = self.spaces.readable_ref(id).ok_or_else(|| not_open(id))?;
        Ok(SpaceInfo {
            space: id.to_string(),
            role: Role::of(replica.role()),
            properties: fields_to_wire(replica.space().properties()),
        })
    }

    fn stage(space: SpaceId, batch: WriteBatch) -> Answer {
        let created: Vec<String> = batch
            .mutations()
            .iter()
            .filter_map(|m| match m {
                Mutation::Create { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect();
        Answer::Stage {
            space,
            batch,
            created,
        }
    }

    /// Applies the staged writes: per space, all of them as one engine
    /// batch (one Automerge transaction per touched shard, however many
    /// calls), so a burst of calls costs about what one batched call does.
    /// When the merged batch is refused (one call's write is invalid), each
    /// call is applied on its own and only the invalid ones fail. Every
    /// applied call is answered once durable (the next flush).
    pub(super) fn commit_staged(&mut self) {
        if self.commit.staged.is_empty() {
            return;
        }
        let staged = std::mem::take(&mut self.commit.staged);
        let mut by_space: BTreeMap<SpaceId, Vec<Staged>> = BTreeMap::new();
        for s in staged {
            by_space.entry(s.space).or_default().push(s);
        }
        for (space, calls) in by_space {
            let merged = (calls.len() > 1).then(|| {
                let mut batch = WriteBatch::new();
                for c in &calls {
                    for m in c.batch.mutations() {
                        batch.push(m.clone());
                    }
                }
                batch
            });
            let merged_ok = match merged {
                Some(batch) => match self.replica(&space) {
                    Ok(r) => r.write(batch).is_ok(),
                    Err(_) => false,
                },
                None => false,
            };
            for c in calls {
                let result = if merged_ok {
                    Ok(())
                } else {
                    match self.replica(&space) {
                        Ok(r) => r.write(c.batch).map(drop).map_err(RpcError::from),
                        Err(e) => Err(e),
                    }
                };
                match result {
                    Ok(()) => self.commit.held.push(Held::App {
                        conn: c.conn,
                        id: c.id,
                        response: Response::Written { created: c.created },
                        space: Some(space),
                    }),
                    Err(error) => {
                        if let Some(conn) = self.apps.get_mut(c.conn) {
                            conn.awaiting.remove(&c.id);
                        }
                        self.answer(c.conn, c.id, Err(error));
                    }
                }
            }
            self.pump_events(space);
        }
    }

    fn call(&mut self, conn: ConnId, origin: &str, method: Request) -> Result<Answer, RpcError> {
        if matches!(method, Request::Ping {}) {
            return Ok(Answer::Now(Response::Done {}));
        }
        let consent = self.grants.consent_of(origin);
        if consent != Consent::Granted {
            return Err(consent_error(consent));
        }
        self.check_quota(origin, &method)?;
        Ok(match method {
            Request::Ping {} => Answer::Now(Response::Done {}),
            Request::IdentityInfo {} => Answer::Now(Response::Identity(self.app_identity(origin)?)),
            Request::CreateSpace { properties } => {
                let properties = fields_from_wire(&properties)?;
                let id = self.rng.space_id();
                let keys = self.keys()?;
                let mut replica = Replica::create(
                    id,
                    keys.identity,
                    keys.device.duplicate(),
                    keys.certificate.clone(),
                    SpaceOptions::default(),
                )
                .map_err(VaultError::from)?;
                for (name, value) in &properties {
                    replica.set_property(name, value.clone())?;
                }
                self.spaces.slots.insert(
                    id,
                    Slot {
                        record: SpaceRecord {
                            created_by: Some(origin.to_owned()),
                            stored_bytes: 0,
                        },
                        state: SlotState::Open(Box::new(replica)),
                    },
                );
                if let Some(g) = self.grants.current.get_mut(origin) {
                    g.spaces.insert(id);
                }
                self.admin_changed();
                Answer::Durable(Response::Space(self.space_info(&id)?))
            }
            Request::ListSpaces {} => {
                let ids = self.grants.spaces_of(origin);
                let mut spaces = Vec::new();
                for id in ids.iter().filter(|id| self.spaces.contains(id)) {
                    spaces.push(self.space_info(id)?);
                }
                Answer::Now(Response::Spaces { spaces })
            }
            Request::SpaceProperties { space } => {
                let id = self.granted_space(origin, &space)?;
                let properties = fields_to_wire(self.readable(&id)?.space().properties());
                Answer::Now(Response::Properties { properties })
            }
            Request::SetSpaceProperty { space, name, value } => {
                let id = self.granted_space(origin, &space)?;
                let value = Value::try_from(&value)?;
                self.replica(&id)?.set_property(&name, value)?;
                Answer::Durable(Response::Done {})
            }
            Request::SpaceStatus { space } => {
                let id = self.granted_space(origin, &space)?;
                let status = self.space_status(&id);
                if let Some(c) = self.apps.get_mut(conn) {
                    c.watching.insert(id, status.clone());
                }
                Answer::Now(Response::SpaceStatus(status))
            }
            Request::SpaceHeads { space } => {
                let id = self.granted_space(origin, &space)?;
                let heads = self.replica(&id)?.read().heads()?;
                Answer::Now(Response::Heads {
                    heads: WireHeads::from(&heads),
                })
            }
            Request::CreateObject {
                space,
                id,
                type_name,
                fields,
            } => {
                let space = self.granted_space(origin, &space)?;
                let object = match id {
                    Some(id) => parse_object_id("id", &id)?,
                    None => self.rng.object_id(),
                };
                let mut batch = WriteBatch::new();
                batch.create_with_id(object, type_name, fields_from_wire(&fields)?);
                Self::stage(space, batch)
            }
            Request::UpdateObject {
                space,
                id,
                set,
                remove,
            } => {
                let space = self.granted_space(origin, &space)?;
                let object = parse_object_id("id", &id)?;
                let mut batch = WriteBatch::new();
                for (field, value) in fields_from_wire(&set)? {
                    batch.set(object, field, value);
                }
                for field in remove {
                    batch.remove(object, field);
                }
                Self::stage(space, batch)
            }
            Request::DeleteObject { space, id } => {
                let space = self.granted_space(origin, &space)?;
                let object = parse_object_id("id", &id)?;
                let mut batch = WriteBatch::new();
                batch.delete(object);
                Self::stage(space, batch)
            }
            Request::Batch { space, mutations } => {
                let space = self.granted_space(origin, &space)?;
                let mut batch = WriteBatch::new();
                for m in &mutations {
                    batch.push(mutation_from_wire(m, &mut || self.rng.object_id())?);
                }
                Self::stage(space, batch)
            }
            Request::GetObjects { space, ids, at } => {
                let space = self.granted_space(origin, &space)?;
                let ids = ids
                    .iter()
                    .map(|id| parse_object_id("ids", id))
                    .collect::<Result<Vec<_>, _>>()?;
                let heads = at.as_ref().map(Heads::try_from).transpose()?;
                let replica = self.readable(&space)?;
                let mut objects = Vec::with_capacity(ids.len());
                for id in &ids {
                    objects.push(wire_object(replica, id, heads.as_ref())?);
                }
                Answer::Now(Response::Objects { objects })
            }
            Request::Query {
                space,
                query,
                at,
                resolve,
            } => {
                let space = self.granted_space(origin, &space)?;
                let query = Query::try_from(&query)?;
                let heads = at.as_ref().map(Heads::try_from).transpose()?;
                let replica = self.readable(&space)?;
                let ids = match &heads {
                    None => replica.read().query(&query)?,
                    Some(h) => replica.read().query_at(&query, h)?,
                };
                let objects = if resolve {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        out.extend(wire_object(replica, id, heads.as_ref())?);
                    }
                    Some(out)
                } else {
                    None
                };
                Answer::Now(Response::Result {
                    ids: ids.iter().map(ObjectId::to_string).collect(),
                    objects,
                })
            }
            Request::Subscribe {
                space,
                query,
                resolve,
            } => {
                let space = self.granted_space(origin, &space)?;
                let open = self.apps.get(conn).map_or(0, |c| c.subscriptions.len());
                if open >= MAX_SUBSCRIPTIONS {
                    return Err(RpcError::new(
                        codes::TOO_MANY_SUBSCRIPTIONS,
                        format!("this connection has {open} live queries open, the most allowed; unsubscribe some first"),
                    )
                    .with_detail("limit", MAX_SUBSCRIPTIONS.to_string()));
                }
                let of_origin = self.apps.subscriptions_of(origin);
                if of_origin >= MAX_SUBSCRIPTIONS_PER_ORIGIN {
                    return Err(RpcError::new(
                        codes::TOO_MANY_SUBSCRIPTIONS,
                        format!("this site's connections have {of_origin} live queries open, the most one site may have; unsubscribe some first"),
                    )
                    .with_detail("limit", MAX_SUBSCRIPTIONS_PER_ORIGIN.to_string()));
                }
                let query = Query::try_from(&query)?;
                let replica = self.readable(&space)?;
                let (inner, ids) = replica.read().subscribe(query.clone())?;
                let objects = if resolve {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        out.extend(wire_object(replica, id, None)?);
                    }
                    Some(out)
                } else {
                    None
                };
                let added = self.apps.add_subscription(Subscription {
                    conn,
                    space,
                    inner,
                    query,
                    resolve,
                    stale: None,
                });
                let Some(sub) = added else {
                    if let Some(r) = self.spaces.readable(&space) {
                        r.read().unsubscribe(inner);
                    }
                    return Err(RpcError::new(codes::DISCONNECTED, "the connection is gone"));
                };
                Answer::Now(Response::Subscribed {
                    subscription: sub,
                    ids: ids.iter().map(ObjectId::to_string).collect(),
                    objects,
                })
            }
            Request::Unsubscribe { subscription } => {
                let key = SubKey {
                    conn,
                    id: subscription,
                };
                if !self.apps.subscriptions.contains_key(&key) {
                    return Err(RpcError::no_such_subscription(subscription));
                }
                self.drop_subscription(key);
                Answer::Now(Response::Done {})
            }
            Request::SpliceText {
                space,
                id,
                field,
                pos,
                delete,
                insert,
                context,
            } => {
                let space = self.granted_space(origin, &space)?;
                let object = parse_object_id("id", &id)?;
                let mut pos = pos as usize;
                if let Some(context) = context.filter(|c| !c.is_empty()) {
                    if context.chars().count() > MAX_SPLICE_CONTEXT {
                        return Err(RpcError::bad_request(format!(
                            "a splice's context is at most {MAX_SPLICE_CONTEXT} characters"
                        ))
                        .with_detail("field", "context"));
                    }
                    // Every earlier write is applied (see `app_message`): the text is current.
                    let text = self.replica(&space)?.read().text(&object, &field)?;
                    pos = crate::model::anchor_position(&text, pos, &context);
                }
                let mut batch = WriteBatch::new();
                batch.splice_text(object, field, pos, delete as usize, insert);
                Self::stage(space, batch)
            }
            Request::ReadText {
                space,
                id,
                field,
                at,
            } => {
                let space = self.granted_space(origin, &space)?;
                let object = parse_object_id("id", &id)?;
                let replica = self.readable(&space)?;
                let text = match at.as_ref().map(Heads::try_from).transpose()? {
                    None => replica.read().text(&object, &field)?,
                    Some(h) => {
                        let state = replica.read().get_at(&object, &h)?;
                        match state.as_ref().and_then(|s| s.fields.get(&field)) {
                            Some(Value::Text(t)) => t.clone(),
                            _ => {
                                return Err(RpcError::new(
                                    "model.not_text",
                                    format!(
                                        "object {id} had no text field {field:?} at those heads"
                                    ),
                                ))
                            }
                        }
                    }
                };
                Answer::Now(Response::Text { text })
            }
        })
    }

    /// Ends an origin's open connections: `access_revoked`, then close.
    pub(super) fn close_origin(&mut self, origin: &str) {
        for conn in self.apps.app_conns_of(origin) {
            self.send(
                conn,
                VaultMessage::Event {
                    subscription: None,
                    event: crate::rpc::Event::AccessRevoked { space: None },
                },
            );
            self.outputs.push_back(Output::Close { conn });
            self.disconnect(conn);
        }
    }

    /// Ends an origin's use of spaces no longer granted to it, on each of
    /// its open connections: their live queries and status watches on
    /// those spaces end, and each hears `access_revoked {space}`.
    pub(super) fn revoke_spaces(&mut self, origin: &str, spaces: &[SpaceId]) {
        if spaces.is_empty() {
            return;
        }
        for conn in self.apps.app_conns_of(origin) {
            let ended: Vec<SubKey> = self
                .apps
                .subscriptions
                .iter()
                .filter(|(k, s)| k.conn == conn && spaces.contains(&s.space))
                .map(|(k, _)| *k)
                .collect();
            for key in ended {
                self.drop_subscription(key);
            }
            if let Some(c) = self.apps.get_mut(conn) {
                c.watching.retain(|space, _| !spaces.contains(space));
            }
            for space in spaces {
                self.send(
                    conn,
                    VaultMessage::Event {
                        subscription: None,
                        event: crate::rpc::Event::AccessRevoked {
                            space: Some(space.to_string()),
                        },
                    },
                );
            }
        }
    }

    /// Tells an origin's open connections that the user allowed it.
    pub(super) fn notify_granted(&mut self, origin: &str) {
        for conn in self.apps.app_conns_of(origin) {
            self.send(
                conn,
                VaultMessage::Event {
                    subscription: None,
                    event: crate::rpc::Event::AccessGranted {},
                },
            );
        }
    }
}

fn not_open(id: &SpaceId) -> RpcError {
    RpcError::from(VaultError::NotOpen {
        space: id.to_string(),
    })
}
