//! API v1 calls of apps: the handshake, consent and grant checks, then
//! the engine. Writes are answered once durable (see `flush.rs`).

use std::collections::BTreeSet;

use super::records::SpaceRecord;
use super::{ConnId, ConnKind, Held, Output, SpaceSlot, Subscription, Vault, VaultError};
use crate::data::{ObjectId, SpaceId, Value};
use crate::identity::DevicePublicKey;
use crate::model::{Heads, Mutation, SpaceOptions, WriteBatch};
use crate::query::Query;
use crate::rpc::{
    answer_hello, codes, fields_from_wire, fields_to_wire, parse_object_id, parse_space_id,
    ClientMessage, Consent, IdentityInfo, Request, Response, Role, RpcError, SpaceInfo,
    StorageState, Undecodable, VaultInfo, VaultMessage, WireHeads, WireObject, MAX_SUBSCRIPTIONS,
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

/// A write waiting in [`Vault::commit_staged`]'s queue.
pub(super) struct Staged {
    conn: ConnId,
    id: u32,
    space: SpaceId,
    batch: WriteBatch,
    created: Vec<String>,
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

/// An object's wire form, now or as it was at `heads`.
fn wire_object(
    replica: &mut Replica,
    id: &ObjectId,
    heads: Option<&Heads>,
) -> Result<Option<WireObject>, RpcError> {
    Ok(match heads {
        None => replica.space_mut().get(id)?.map(WireObject::from),
        Some(h) => replica
            .space_mut()
            .get_at(id, h)?
            .as_ref()
            .map(WireObject::from),
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
    /// Handles one message of an app connection (decoded by the host, or
    /// the reason it could not be). Answers go to [`Vault::poll_output`].
    pub fn app_message(&mut self, conn: ConnId, message: Result<ClientMessage, Undecodable>) {
        let Some(c) = self.conns.get(&conn) else {
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
            ClientMessage::Hello { versions, client } => {
                let info = VaultInfo {
                    vault: self.build.clone(),
                    storage: StorageState::Persistent,
                    consent: self.consent_of(&origin),
                };
                let answer = answer_hello(&versions, &client, info);
                if let VaultMessage::Welcome { version, .. } = &answer {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.version = Some(*version);
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
                let awaiting = self.conns.get(&conn).map_or(0, |c| c.awaiting.len());
                if self
                    .conns
                    .get(&conn)
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
                if !is_object_write(&method) {
                    // Reads and other calls see every write before them.
                    self.commit_staged();
                }
                match self.call(conn, &origin, method) {
                    Ok(Answer::Now(response)) => self.answer(conn, id, Ok(response)),
                    Ok(Answer::Durable(response)) => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.awaiting.insert(id);
                        }
                        self.held.push(Held::App { conn, id, response });
                    }
                    Ok(Answer::Stage {
                        space,
                        batch,
                        created,
                    }) => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.awaiting.insert(id);
                        }
                        self.staged.push(Staged {
                            conn,
                            id,
                            space,
                            batch,
                            created,
                        });
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

    /// The space a call names, if the origin may use it.
    fn granted_space(&self, origin: &str, text: &str) -> Result<SpaceId, RpcError> {
        let id = parse_space_id("space", text)?;
        let granted = self
            .grants
            .get(origin)
            .is_some_and(|g| g.allowed && g.spaces.contains(&id));
        if granted && self.spaces.contains_key(&id) {
            Ok(id)
        } else {
            Err(RpcError::no_such_space(text))
        }
    }

    fn device_public(&self) -> DevicePublicKey {
        self.device.public_key()
    }

    fn identity_info(&self) -> IdentityInfo {
        IdentityInfo::new(
            &self.identity,
            &self.device_public(),
            self.identity_record.display_name.clone(),
        )
    }

    fn space_info(&self, id: &SpaceId) -> SpaceInfo {
        let slot = &self.spaces[id];
        let role = slot
            .replica
            .as_ref()
            .and_then(|r| r.control().role_of(&self.identity))
            .map(Role::from)
            .unwrap_or(Role::Owner);
        SpaceInfo {
            space: id.to_string(),
            role,
            properties: fields_to_wire(&slot.record.properties),
        }
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

    /// Whether writes wait in the staging queue.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Applies the staged writes: per space, all of them as one engine
    /// batch (one Automerge transaction per touched shard, however many
    /// calls), so a burst of calls costs about what one batched call does.
    /// When the merged batch is refused (one call's write is invalid), each
    /// call is applied on its own and only the invalid ones fail. Every
    /// applied call is answered once durable (the next flush).
    pub fn commit_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let staged = std::mem::take(&mut self.staged);
        let mut spaces: Vec<SpaceId> = staged.iter().map(|s| s.space).collect();
        spaces.sort();
        spaces.dedup();
        let mut by_space: std::collections::BTreeMap<SpaceId, Vec<Staged>> =
            spaces.iter().map(|id| (*id, Vec::new())).collect();
        for s in staged {
            by_space.get_mut(&s.space).expect("listed").push(s);
        }
        for (space, calls) in by_space {
            let merged = if calls.len() == 1 {
                None
            } else {
                let mut batch = WriteBatch::new();
                for c in &calls {
                    for m in c.batch.mutations() {
                        batch.push(m.clone());
                    }
                }
                Some(batch)
            };
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
                        Err(e) => Err(RpcError::from(e)),
                    }
                };
                match result {
                    Ok(()) => self.held.push(Held::App {
                        conn: c.conn,
                        id: c.id,
                        response: Response::Written { created: c.created },
                    }),
                    Err(error) => {
                        if let Some(conn) = self.conns.get_mut(&c.conn) {
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
        let consent = self.consent_of(origin);
        if consent != Consent::Granted {
            return Err(consent_error(consent));
        }
        Ok(match method {
            Request::Ping {} => Answer::Now(Response::Done {}),
            Request::IdentityInfo {} => Answer::Now(Response::Identity(self.identity_info())),
            Request::CreateSpace { properties } => {
                let properties = fields_from_wire(&properties)?;
                let id = SpaceId::random();
                let mut replica = Replica::create(
                    id,
                    self.identity,
                    self.device.duplicate(),
                    self.certificate.clone(),
                    SpaceOptions::default(),
                )
                .map_err(VaultError::from)?;
                for (name, value) in &properties {
                    replica.set_property(name, value.clone())?;
                }
                self.spaces.insert(
                    id,
                    SpaceSlot {
                        record: SpaceRecord {
                            created_by: Some(origin.to_owned()),
                            properties,
                        },
                        replica: Some(replica),
                    },
                );
                if let Some(g) = self.grants.get_mut(origin) {
                    g.spaces.insert(id);
                }
                self.admin_changed();
                Answer::Durable(Response::Space(self.space_info(&id)))
            }
            Request::ListSpaces {} => {
                let ids: Vec<SpaceId> = self
                    .grants
                    .get(origin)
                    .map(|g| g.spaces.iter().copied().collect())
                    .unwrap_or_default();
                let spaces = ids
                    .iter()
                    .filter(|id| self.spaces.contains_key(id))
                    .map(|id| self.space_info(id))
                    .collect();
                Answer::Now(Response::Spaces { spaces })
            }
            Request::SpaceProperties { space } => {
                let id = self.granted_space(origin, &space)?;
                let properties = fields_to_wire(self.replica(&id)?.space().properties());
                Answer::Now(Response::Properties { properties })
            }
            Request::SetSpaceProperty { space, name, value } => {
                let id = self.granted_space(origin, &space)?;
                let value = Value::try_from(&value)?;
                self.replica(&id)?.set_property(&name, value.clone())?;
                if let Some(slot) = self.spaces.get_mut(&id) {
                    slot.record.properties.insert(name, value);
                }
                Answer::Durable(Response::Done {})
            }
            Request::SpaceHeads { space } => {
                let id = self.granted_space(origin, &space)?;
                let heads = self.replica(&id)?.space_mut().heads()?;
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
                    None => ObjectId::random(),
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
                    batch.push(Mutation::try_from(m)?);
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
                let replica = self.replica(&space)?;
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
                let replica = self.replica(&space)?;
                let ids = match &heads {
                    None => replica.space_mut().query(&query)?,
                    Some(h) => replica.space_mut().query_at(&query, h)?,
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
                let open = self.conns.get(&conn).map_or(0, |c| c.subscriptions.len());
                if open >= MAX_SUBSCRIPTIONS {
                    return Err(RpcError::new(
                        codes::TOO_MANY_SUBSCRIPTIONS,
                        format!("this connection has {open} live queries open, the most allowed; unsubscribe some first"),
                    )
                    .with_detail("limit", MAX_SUBSCRIPTIONS.to_string()));
                }
                let query = Query::try_from(&query)?;
                let replica = self.replica(&space)?;
                let (inner, ids) = replica.space_mut().subscribe(query.clone())?;
                let objects = if resolve {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        out.extend(wire_object(replica, id, None)?);
                    }
                    Some(out)
                } else {
                    None
                };
                let sub = self.next_subscription;
                self.next_subscription = self.next_subscription.wrapping_add(1).max(1);
                self.subscriptions.insert(
                    sub,
                    Subscription {
                        conn,
                        space,
                        inner,
                        query,
                        resolve,
                        stale: None,
                    },
                );
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.subscriptions.insert(sub);
                }
                Answer::Now(Response::Subscribed {
                    subscription: sub,
                    ids: ids.iter().map(ObjectId::to_string).collect(),
                    objects,
                })
            }
            Request::Unsubscribe { subscription } => {
                let mine = self
                    .subscriptions
                    .get(&subscription)
                    .is_some_and(|s| s.conn == conn);
                if !mine {
                    return Err(RpcError::no_such_subscription(subscription));
                }
                self.drop_subscription(subscription);
                Answer::Now(Response::Done {})
            }
            Request::SpliceText {
                space,
                id,
                field,
                pos,
                delete,
                insert,
            } => {
                let space = self.granted_space(origin, &space)?;
                let object = parse_object_id("id", &id)?;
                let mut batch = WriteBatch::new();
                batch.splice_text(object, field, pos as usize, delete as usize, insert);
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
                let replica = self.replica(&space)?;
                let text = match at.as_ref().map(Heads::try_from).transpose()? {
                    None => replica.space_mut().text(&object, &field)?,
                    Some(h) => {
                        let state = replica.space_mut().get_at(&object, &h)?;
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
        for conn in self.app_conns_of(origin) {
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

    /// Tells an origin's open connections that the user allowed it.
    pub(super) fn notify_granted(&mut self, origin: &str) {
        for conn in self.app_conns_of(origin) {
            self.send(
                conn,
                VaultMessage::Event {
                    subscription: None,
                    event: crate::rpc::Event::AccessGranted {},
                },
            );
        }
    }

    /// Spaces granted to an origin.
    pub fn granted_spaces(&self, origin: &str) -> BTreeSet<SpaceId> {
        self.grants
            .get(origin)
            .filter(|g| g.allowed)
            .map(|g| g.spaces.clone())
            .unwrap_or_default()
    }
}
