//! Management calls of the vault's own top-level pages: the consent
//! popup's decision, revocation, listings for the manage page.

use super::commit::Held;
use super::machine::{AdminUndecodable, ConnId, Output};
use super::records::GrantRecord;
use super::Vault;
use crate::data::SpaceId;
use crate::identity::{CredentialKind, DevicePublicKey, IdentityPublicKey};
use crate::rpc::{
    codes, fields_to_wire, parse_space_id, AdminMessage, AdminReply, AdminRequest, AdminResponse,
    AppGrant, Member, Role, RpcError, VaultSpace,
};
use crate::sync::{Replica, SpaceExport};

fn identity_key(field: &str, text: &str) -> Result<IdentityPublicKey, RpcError> {
    text.parse().map_err(|e: crate::identity::IdentityError| {
        RpcError::bad_request(e.to_string()).with_detail("field", field)
    })
}

fn device_key(field: &str, text: &str) -> Result<DevicePublicKey, RpcError> {
    text.parse().map_err(|e: crate::identity::IdentityError| {
        RpcError::bad_request(e.to_string()).with_detail("field", field)
    })
}

/// A role to grant: reader, editor or admin.
fn grantable(role: Role) -> Result<crate::identity::Role, RpcError> {
    use crate::identity::Role as R;
    match role {
        Role::Reader => Ok(R::Reader),
        Role::Editor => Ok(R::Editor),
        Role::Admin => Ok(R::Admin),
        Role::Owner | Role::None => Err(RpcError::bad_request(
            "a member is admitted as reader, editor or admin (the owner role comes only with creating the space)",
        )
        .with_detail("field", "role")),
    }
}

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

/// Whether `origin` (checked by [`check_origin`]) is one an app may be
/// given access from: https, or plain http only on this machine
/// (`localhost`, `*.localhost`, `127.0.0.1`, `[::1]`) for development. A
/// plain-http page elsewhere can be changed by anyone on its network path.
fn is_secure_origin(origin: &str) -> bool {
    if origin.starts_with("https://") {
        return true;
    }
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split(']')
            .next()
            .map(|h| format!("[{h}]"))
            .unwrap_or_default(),
        None => authority.split(':').next().unwrap_or("").to_string(),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "[::1]"
}

enum Answer {
    Now(AdminResponse),
    Durable(AdminResponse),
}

impl Vault {
    /// A space this vault holds (open: the call was parked until it was).
    fn held_space(&self, text: &str) -> Result<SpaceId, RpcError> {
        let id = parse_space_id("space", text)?;
        if self.spaces.contains(&id) {
            Ok(id)
        } else {
            Err(RpcError::no_such_space(text))
        }
    }

    /// Issues a credential in a space as this device; peers that became
    /// (or stopped being) members are offered (or lose) the space.
    fn issue(&mut self, space: &str, kind: CredentialKind) -> Result<Answer, RpcError> {
        let id = self.held_space(space)?;
        let outcome = self.replica(&id)?.issue(kind);
        outcome?;
        self.membership_changed(id);
        self.admin_changed();
        Ok(Answer::Durable(AdminResponse::Done {}))
    }

    /// Joins a space from another vault's export (`space.join`, or an
    /// invitation's answer): this device authorizes itself for this
    /// identity, which must be a member.
    pub(super) fn join_from_export(&mut self, export: &str) -> Result<SpaceId, RpcError> {
        let export = SpaceExport::from_text(export)
            .map_err(|e| RpcError::from(e).with_detail("field", "export"))?;
        let keys = self.keys()?;
        let replica = Replica::join_export(
            &export,
            keys.identity,
            keys.device.duplicate(),
            keys.certificate.clone(),
        )?;
        let id = replica.id();
        if self.spaces.contains(&id) {
            return Err(RpcError::bad_request(format!(
                "this vault already holds space {id}"
            )));
        }
        self.spaces.slots.insert(
            id,
            super::spaces::Slot {
                record: super::records::SpaceRecord {
                    created_by: None,
                    stored_bytes: 0,
                },
                state: super::spaces::SlotState::Open(Box::new(replica)),
            },
        );
        self.admin_changed();
        self.offer_space(id);
        Ok(id)
    }

    /// Handles one message of an admin connection (decoded by the host, or
    /// why not).
    pub(super) fn admin_message(
        &mut self,
        conn: ConnId,
        message: Result<AdminMessage, AdminUndecodable>,
    ) {
        if !self.apps.is_admin(conn) {
            return;
        }
        let (id, method) = match message {
            Ok(AdminMessage::Request { id, method }) => (id, method),
            Err(AdminUndecodable { id, error }) => {
                self.admin_answer(conn, id.unwrap_or(0), Err(error));
                return;
            }
        };
        self.commit_staged();
        match self.admin_call(method) {
            Ok(Answer::Now(response)) => self.admin_answer(conn, id, Ok(response)),
            Ok(Answer::Durable(response)) => {
                self.commit.held.push(Held::Admin { conn, id, response })
            }
            Err(error) => self.admin_answer(conn, id, Err(error)),
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

    /// Tells the vault's pages that what they list changed.
    pub(super) fn admin_changed(&mut self) {
        for conn in self.apps.admins() {
            self.outputs.push_back(Output::Admin {
                conn,
                message: AdminReply::Changed {},
            });
        }
    }

    fn admin_call(&mut self, method: AdminRequest) -> Result<Answer, RpcError> {
        Ok(match method {
            AdminRequest::Status {} => Answer::Now(AdminResponse::Status {
                identity: self.identity_info()?,
                spaces: self.spaces.slots.len() as u32,
                apps: self.grants.current.len() as u32,
                connections: self.apps.app_count() as u32,
            }),
            AdminRequest::ListApps {} => {
                let apps = self
                    .grants
                    .current
                    .iter()
                    .map(|(origin, g)| AppGrant {
                        origin: origin.clone(),
                        allowed: g.allowed,
                        spaces: g.spaces.iter().map(SpaceId::to_string).collect(),
                        connections: self.apps.app_conns_of(origin).len() as u32,
                        decided_at: g.decided_at,
                        stored_bytes: self.origin_usage(origin) as f64,
                        share_bytes: self.config.origin_quota.map(|q| q as f64),
                    })
                    .collect();
                Answer::Now(AdminResponse::Apps { apps })
            }
            AdminRequest::ListSpaces {} => {
                // Every space is open (the call was parked until they were).
                let spaces = self
                    .spaces
                    .slots
                    .iter()
                    .map(|(id, slot)| {
                        let replica = match &slot.state {
                            super::spaces::SlotState::Open(r) => Some(r),
                            _ => None,
                        };
                        VaultSpace {
                            space: id.to_string(),
                            properties: replica
                                .map(|r| fields_to_wire(r.space().properties()))
                                .unwrap_or_default(),
                            objects: replica.map(|r| r.space().len() as u32),
                            apps: self
                                .grants
                                .current
                                .iter()
                                .filter(|(_, g)| g.allowed && g.spaces.contains(id))
                                .map(|(o, _)| o.clone())
                                .collect(),
                            created_by: slot.record.created_by.clone(),
                            peers: self.peers.syncing(id) as u32,
                            synced_at: self.peers.heard.get(id).map(|t| *t as f64),
                            online: self.signal_is_up(),
                        }
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
                if allow && !is_secure_origin(&origin) {
                    return Err(RpcError::bad_request(format!(
                        "{origin} is not a secure origin: only https:// sites (or http://localhost while developing) can be given access to the vault"
                    ))
                    .with_detail("field", "origin")
                    .with_detail("reason", "insecure_origin"));
                }
                // Exactly the spaces the user checked: spaces the origin
                // created are offered checked by the consent page, not
                // given back behind the user's back.
                let mut granted = std::collections::BTreeSet::new();
                if allow {
                    for s in &spaces {
                        let id = parse_space_id("spaces", s)?;
                        if !self.spaces.contains(&id) {
                            return Err(RpcError::no_such_space(s));
                        }
                        granted.insert(id);
                    }
                }
                let was_allowed = self.grants.current.get(&origin).is_some_and(|g| g.allowed);
                let taken: Vec<SpaceId> = self
                    .grants
                    .spaces_of(&origin)
                    .difference(&granted)
                    .copied()
                    .collect();
                self.grants.current.insert(
                    origin.clone(),
                    GrantRecord {
                        allowed: allow,
                        spaces: granted,
                        decided_at: self.now as f64,
                    },
                );
                if allow {
                    self.revoke_spaces(&origin, &taken);
                    self.notify_granted(&origin);
                } else if was_allowed {
                    self.close_origin(&origin);
                }
                self.admin_changed();
                Answer::Durable(AdminResponse::Done {})
            }
            AdminRequest::Revoke { origin } => {
                if self.grants.current.remove(&origin).is_none() {
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
            AdminRequest::ListMembers { space } => {
                let id = self.held_space(&space)?;
                let replica = self.replica(&id)?;
                let state = replica.control().state();
                let members = state
                    .members
                    .iter()
                    .map(|(identity, role)| Member {
                        identity: identity.to_string(),
                        role: Role::from(*role),
                        devices: state
                            .devices_of(identity)
                            .iter()
                            .map(DevicePublicKey::to_string)
                            .collect(),
                    })
                    .collect();
                Answer::Now(AdminResponse::Members { members })
            }
            AdminRequest::Admit {
                space,
                identity,
                role,
            } => {
                let member = identity_key("identity", &identity)?;
                let role = grantable(role)?;
                self.issue(&space, CredentialKind::Admit { member, role })?
            }
            AdminRequest::SetRole {
                space,
                identity,
                role,
            } => {
                let member = identity_key("identity", &identity)?;
                let role = grantable(role)?;
                self.issue(&space, CredentialKind::ChangeRole { member, role })?
            }
            AdminRequest::Remove { space, identity } => {
                let member = identity_key("identity", &identity)?;
                self.issue(&space, CredentialKind::Remove { member })?
            }
            AdminRequest::RevokeDevice {
                space,
                identity,
                device,
            } => {
                let identity = identity_key("identity", &identity)?;
                let device = device_key("device", &device)?;
                self.issue(&space, CredentialKind::RevokeDevice { identity, device })?
            }
            AdminRequest::Export { space } => {
                let id = self.held_space(&space)?;
                let export = self.replica(&id)?.export().to_text();
                Answer::Now(AdminResponse::Export { export })
            }
            AdminRequest::Join { export } => {
                let space = self.join_from_export(&export)?;
                Answer::Durable(AdminResponse::Joined {
                    space: space.to_string(),
                })
            }
            AdminRequest::CreateInvitation {
                space,
                role,
                ttl_minutes,
                multi_use,
            } => {
                let invitation =
                    self.create_invitation(&space, role, ttl_minutes, multi_use.unwrap_or(false))?;
                Answer::Durable(AdminResponse::Invitation {
                    invitation: Box::new(invitation),
                })
            }
            AdminRequest::ListInvitations {} => Answer::Now(AdminResponse::Invitations {
                invitations: self.list_invitations(),
            }),
            AdminRequest::CancelInvitation { invitation } => {
                self.cancel_invitation(&invitation)?;
                Answer::Durable(AdminResponse::Done {})
            }
            AdminRequest::AcceptInvitation { code } => Answer::Now(AdminResponse::Invitation {
                invitation: Box::new(self.accept_invitation(&code)?),
            }),
            AdminRequest::EnterAuthCode { invitation, code } => {
                self.enter_auth_code(&invitation, &code)?;
                Answer::Now(AdminResponse::Done {})
            }
            AdminRequest::SetName { name } => {
                if name.len() > MAX_DISPLAY_NAME {
                    return Err(RpcError::too_large(
                        "the display name (bytes)",
                        name.len(),
                        MAX_DISPLAY_NAME,
                    ));
                }
                let keys = self.keys_mut()?;
                keys.record.display_name = (!name.is_empty()).then_some(name);
                keys.unsaved = true;
                self.admin_changed();
                Answer::Durable(AdminResponse::Done {})
            }
        })
    }
}
