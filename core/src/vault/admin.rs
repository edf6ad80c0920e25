//! Management calls of the vault's own top-level pages: the consent
//! popup's decision, revocation, listings for the manage page.

use super::records::GrantRecord;
use super::{ConnId, ConnKind, Held, Output, Vault};
use crate::data::SpaceId;
use crate::rpc::{
    codes, fields_to_wire, parse_space_id, AdminMessage, AdminReply, AdminRequest, AdminResponse,
    AppGrant, RpcError, VaultSpace,
};

/// Longest origin the vault records, in bytes.
pub const MAX_ORIGIN: usize = 512;
/// Longest display name, in bytes.
pub const MAX_DISPLAY_NAME: usize = 256;

fn check_origin(origin: &str) -> Result<(), RpcError> {
    let ok = !origin.is_empty()
        && origin.len() <= MAX_ORIGIN
        && (origin.starts_with("http://") || origin.starts_with("https://"))
        && !origin[origin.find("//").map_or(0, |i| i + 2)..].contains('/')
        && origin.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(RpcError::bad_request(format!(
            "{:?} is not a web origin (scheme://host[:port])",
            origin.chars().take(80).collect::<String>()
        ))
        .with_detail("field", "origin"))
    }
}

enum Answer {
    Now(AdminResponse),
    Durable(AdminResponse),
}

impl Vault {
    /// Handles one message of an admin connection. `now_ms` is the host's
    /// clock (milliseconds since the Unix epoch), recorded with decisions.
    pub fn admin_message(&mut self, conn: ConnId, message: AdminMessage, now_ms: f64) {
        if !matches!(
            self.conns.get(&conn).map(|c| &c.kind),
            Some(ConnKind::Admin)
        ) {
            return;
        }
        let AdminMessage::Request { id, method } = message;
        match self.admin_call(method, now_ms) {
            Ok(Answer::Now(response)) => self.admin_answer(conn, id, Ok(response)),
            Ok(Answer::Durable(response)) => self.held.push(Held::Admin { conn, id, response }),
            Err(error) => self.admin_answer(conn, id, Err(error)),
        }
    }

    /// Answers an admin message that could not be decoded.
    pub fn admin_undecodable(&mut self, conn: ConnId, id: Option<u32>, error: RpcError) {
        match id {
            Some(id) => self.admin_answer(conn, id, Err(error)),
            None => self.outputs.push_back(Output::Admin {
                conn,
                message: AdminReply::Response {
                    id: 0,
                    result: Err(error),
                },
            }),
        }
    }

    pub(super) fn admin_answer(
        &mut self,
        conn: ConnId,
        id: u32,
        result: Result<AdminResponse, RpcError>,
    ) {
        self.outputs.push_back(Output::Admin {
            conn,
            message: AdminReply::Response { id, result },
        });
    }

    fn admin_call(&mut self, method: AdminRequest, now_ms: f64) -> Result<Answer, RpcError> {
        Ok(match method {
            AdminRequest::Status {} => Answer::Now(AdminResponse::Status {
                identity: crate::rpc::IdentityInfo::new(
                    &self.identity,
                    &self.device.public_key(),
                    self.identity_record.display_name.clone(),
                ),
                spaces: self.spaces.len() as u32,
                apps: self.grants.len() as u32,
                connections: self
                    .conns
                    .values()
                    .filter(|c| matches!(c.kind, ConnKind::App { .. }))
                    .count() as u32,
            }),
            AdminRequest::ListApps {} => {
                let apps = self
                    .grants
                    .iter()
                    .map(|(origin, g)| AppGrant {
                        origin: origin.clone(),
                        allowed: g.allowed,
                        spaces: g.spaces.iter().map(SpaceId::to_string).collect(),
                        connections: self.app_conns_of(origin).len() as u32,
                        decided_at: g.decided_at,
                    })
                    .collect();
                Answer::Now(AdminResponse::Apps { apps })
            }
            AdminRequest::ListSpaces {} => {
                let spaces = self
                    .spaces
                    .iter()
                    .map(|(id, slot)| VaultSpace {
                        space: id.to_string(),
                        properties: fields_to_wire(&slot.record.properties),
                        objects: slot.replica.as_ref().map(|r| r.space().len() as u32),
                        apps: self
                            .grants
                            .iter()
                            .filter(|(_, g)| g.allowed && g.spaces.contains(id))
                            .map(|(o, _)| o.clone())
                            .collect(),
                        created_by: slot.record.created_by.clone(),
                    })
                    .collect();
                Answer::Now(AdminResponse::Spaces { spaces })
            }
            AdminRequest::Decide {
                origin,
                allow,
                spaces,
            } => {
                check_origin(&origin)?;
                let mut granted = std::collections::BTreeSet::new();
                if allow {
                    for s in &spaces {
                        let id = parse_space_id("spaces", s)?;
                        if !self.spaces.contains_key(&id) {
                            return Err(RpcError::no_such_space(s));
                        }
                        granted.insert(id);
                    }
                    // Spaces it created stay its own.
                    granted.extend(
                        self.spaces
                            .iter()
                            .filter(|(_, s)| s.record.created_by.as_deref() == Some(&*origin))
                            .map(|(id, _)| *id),
                    );
                }
                let was_allowed = self.grants.get(&origin).is_some_and(|g| g.allowed);
                self.grants.insert(
                    origin.clone(),
                    GrantRecord {
                        allowed: allow,
                        spaces: granted,
                        decided_at: now_ms,
                    },
                );
                if allow {
                    self.notify_granted(&origin);
                } else if was_allowed {
                    self.close_origin(&origin);
                }
                self.admin_changed();
                Answer::Durable(AdminResponse::Done {})
            }
            AdminRequest::Revoke { origin } => {
                if self.grants.remove(&origin).is_none() {
                    return Err(RpcError::new(
                        codes::BAD_REQUEST,
                        format!(
                            "{:?} has no grant to revoke",
                            origin.chars().take(80).collect::<String>()
                        ),
                    )
                    .with_detail("field", "origin"));
                }
                self.close_origin(&origin);
                self.admin_changed();
                Answer::Durable(AdminResponse::Done {})
            }
            AdminRequest::SetName { name } => {
                if name.len() > MAX_DISPLAY_NAME {
                    return Err(RpcError::too_large(
                        "the display name (bytes)",
                        name.len(),
                        MAX_DISPLAY_NAME,
                    ));
                }
                self.identity_record.display_name = (!name.is_empty()).then_some(name);
                self.identity_unsaved = true;
                self.admin_changed();
                Answer::Durable(AdminResponse::Done {})
            }
        })
    }
}
