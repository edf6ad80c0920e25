//! Membership rules, the malicious suite and convergence properties.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Change, ReadDoc, ROOT};
use proptest::prelude::*;

use super::*;
use crate::data::SpaceId;

struct Person {
    id: IdentityKey,
    dev: DeviceKey,
    cert: DeviceCertificate,
}

impl Person {
    fn new() -> Self {
        let id = IdentityKey::generate().unwrap();
        let dev = DeviceKey::generate().unwrap();
        let cert = id
            .certify_device(&dev.request_authorization(id.public_key()))
            .unwrap();
        Person { id, dev, cert }
    }
    fn pk(&self) -> IdentityPublicKey {
        self.id.public_key()
    }
    /// Acting through the device, as a vault does.
    fn via_device(&self) -> Issuer<'_> {
        Issuer::device(&self.dev, self.pk())
    }
}

/// A space created by `owner`'s device.
fn new_space(owner: &Person) -> SpaceControl {
    SpaceControl::create(
        SpaceId::random(),
        owner.via_device(),
        Some(owner.cert.clone()),
    )
    .unwrap()
}

/// Admits `p` with `role` (by `by`) and authorizes p's device (by p).
fn join(space: &mut SpaceControl, by: &Person, p: &Person, role: Role) {
    space.admit(by.via_device(), p.pk(), role).unwrap();
    space
        .authorize_device((&p.id).into(), p.cert.clone())
        .unwrap();
}

fn copy(space: &SpaceControl) -> SpaceControl {
    let mut other = SpaceControl::from_genesis(space.genesis().clone()).unwrap();
    for c in space.credentials().skip(1) {
        other.receive(c.clone()).unwrap();
    }
    other
}

fn sync(a: &mut SpaceControl, b: &mut SpaceControl) {
    let from_a: Vec<_> = a.credentials().cloned().collect();
    let from_b: Vec<_> = b.credentials().cloned().collect();
    for c in from_b {
        a.receive(c).unwrap();
    }
    for c in from_a {
        b.receive(c).unwrap();
    }
}

fn denied(err: IdentityError) -> Denied {
    match err {
        IdentityError::Unauthorized { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn doc_of(p: &Person) -> AutoCommit {
    AutoCommit::new().with_actor(p.dev.actor_id())
}

fn write(doc: &mut AutoCommit, key: &str, value: &str) -> Change {
    doc.put(ROOT, key, value).unwrap();
    doc.commit();
    doc.get_last_local_change().unwrap()
}

/// A signed bundle and the changes it covers (what travels between peers).
#[derive(Clone, Debug)]
struct Tb {
    b: SignedChanges,
    changes: Vec<Change>,
}

/// One run in shard 0 of `changes` (consecutive changes of one actor).
fn run_of(changes: &[Change]) -> (Run, Vec<automerge::ChangeHash>) {
    (
        Run {
            shard: 0,
            first_seq: changes[0].seq(),
            count: changes.len() as u32,
        },
        changes.iter().map(Change::hash).collect(),
    )
}

fn sign(dev: &DeviceKey, space: SpaceId, heads: Vec<CredentialHash>, changes: &[Change]) -> Tb {
    Tb {
        b: dev
            .sign_changes(space, heads, vec![run_of(changes)])
            .unwrap(),
        changes: changes.to_vec(),
    }
}

fn bundle(space: &SpaceControl, p: &Person, changes: &[Change]) -> Tb {
    sign(&p.dev, space.space(), space.heads(), changes)
}

/// Verifies `tb` against `space` as a peer would (hashes, actors and
/// sequence numbers computed from the changes).
fn verify(space: &SpaceControl, tb: &Tb) -> Result<(), Rejection> {
    let actors: Vec<Vec<u8>> = tb
        .changes
        .iter()
        .map(|c| c.actor_id().to_bytes().to_vec())
        .collect();
    let refs: Vec<ChangeRef<'_>> = tb
        .changes
        .iter()
        .zip(&actors)
        .map(|(c, a)| ChangeRef {
            hash: c.hash(),
            actor: a,
            seq: c.seq(),
        })
        .collect();
    space.verify_bundle(&tb.b, &[refs])
}

// ---------------------------------------------------------------- rules

#[test]
fn genesis_makes_the_owner_and_roles_follow_the_rules() {
    let (owner, admin, editor, reader, x) = (
        Person::new(),
        Person::new(),
        Person::new(),
        Person::new(),
        Person::new(),
    );
    let mut s = new_space(&owner);
    assert_eq!(s.role_of(&owner.pk()), Some(Role::Owner));
    assert!(s.device_can_write(&owner.dev.public_key()));
    join(&mut s, &owner, &admin, Role::Admin);
    join(&mut s, &admin, &editor, Role::Editor);
    join(&mut s, &admin, &reader, Role::Reader);
    assert_eq!(s.role_of(&editor.pk()), Some(Role::Editor));
    assert!(s.can_write(&editor.pk()));
    assert!(!s.can_write(&reader.pk()));
    assert!(!s.device_can_write(&reader.dev.public_key()));

    // Editors and readers cannot admit.
    for p in [&editor, &reader] {
        let err = s.admit(p.via_device(), x.pk(), Role::Reader).unwrap_err();
        assert!(
            matches!(denied(err), Denied::RoleTooLow { .. }),
            "{p:?}",
            p = p.pk()
        );
    }
    // An editor cannot promote itself.
    let err = s
        .change_role(editor.via_device(), editor.pk(), Role::Admin)
        .unwrap_err();
    assert_eq!(err.code(), "identity.denied.role_too_low");
    // An admin cannot grant more than admin.
    let err = s
        .admit(admin.via_device(), x.pk(), Role::Owner)
        .unwrap_err();
    assert_eq!(denied(err), Denied::CannotGrantOwner);
    let err = s
        .change_role(admin.via_device(), editor.pk(), Role::Owner)
        .unwrap_err();
    assert_eq!(denied(err), Denied::CannotGrantOwner);
    // Nobody can remove or demote the owner.
    let err = s.remove(admin.via_device(), owner.pk()).unwrap_err();
    assert_eq!(denied(err), Denied::OwnerIsPermanent);
    let err = s.remove(owner.via_device(), owner.pk()).unwrap_err();
    assert_eq!(denied(err), Denied::OwnerIsPermanent);
    let err = s
        .change_role(admin.via_device(), owner.pk(), Role::Reader)
        .unwrap_err();
    assert_eq!(denied(err), Denied::OwnerIsPermanent);
    // An admin may admit another admin, and members may leave.
    s.admit(admin.via_device(), x.pk(), Role::Admin).unwrap();
    s.remove(reader.via_device(), reader.pk()).unwrap();
    assert_eq!(s.role_of(&reader.pk()), None);
    let err = s
        .admit(admin.via_device(), editor.pk(), Role::Reader)
        .unwrap_err();
    assert!(matches!(denied(err), Denied::AlreadyMember { .. }));

    // A stranger's device cannot sign for a member.
    let stranger = Person::new();
    let err = s
        .admit(
            Issuer::device(&stranger.dev, admin.pk()),
            stranger.pk(),
            Role::Editor,
        )
        .unwrap_err();
    assert!(matches!(denied(err), Denied::SignerNotAuthorized { .. }));

    // Loading from scratch gives the same state.
    let before = s.state().clone();
    assert_eq!(s.recompute(), &before);
    assert_eq!(copy(&s).state(), &before);
}

#[test]
fn revoked_devices_lose_their_authority() {
    let (owner, admin, x) = (Person::new(), Person::new(), Person::new());
    let mut s = new_space(&owner);
    join(&mut s, &owner, &admin, Role::Admin);
    s.revoke_device(owner.via_device(), admin.pk(), admin.dev.public_key())
        .unwrap();
    assert_eq!(
        s.state().device(&admin.dev.public_key()),
        Some(DeviceStatus::Revoked {
            identity: admin.pk()
        })
    );
    let err = s
        .admit(admin.via_device(), x.pk(), Role::Reader)
        .unwrap_err();
    assert!(matches!(denied(err), Denied::SignerRevoked { .. }));
    // Revocation is final for that key.
    let err = s
        .authorize_device((&admin.id).into(), admin.cert.clone())
        .unwrap_err();
    assert!(matches!(denied(err), Denied::DeviceRevoked { .. }));
    // The identity key itself still acts, and can authorize a new device.
    let new_dev = DeviceKey::generate().unwrap();
    let cert = admin
        .id
        .certify_device(&new_dev.request_authorization(admin.pk()))
        .unwrap();
    s.authorize_device((&admin.id).into(), cert).unwrap();
    s.admit(Issuer::device(&new_dev, admin.pk()), x.pk(), Role::Reader)
        .unwrap();
}

#[test]
fn a_removal_voids_concurrent_credentials_of_the_removed_member() {
    let (owner, admin, x, y) = (Person::new(), Person::new(), Person::new(), Person::new());
    let mut r1 = new_space(&owner);
    join(&mut r1, &owner, &admin, Role::Admin);
    let mut r2 = copy(&r1);
    // Concurrently: the owner removes the admin; the admin admits x, and
    // x (seeing its admission) admits nobody but authorizes its device.
    let removal = r1.remove(owner.via_device(), admin.pk()).unwrap();
    let admission = r2.admit(admin.via_device(), x.pk(), Role::Admin).unwrap();
    r2.authorize_device((&x.id).into(), x.cert.clone()).unwrap();
    let by_x = r2.admit(x.via_device(), y.pk(), Role::Editor).unwrap();
    assert_eq!(r2.role_of(&y.pk()), Some(Role::Editor));
    sync(&mut r1, &mut r2);
    for r in [&r1, &r2] {
        assert_eq!(r.role_of(&admin.pk()), None);
        assert_eq!(
            r.role_of(&x.pk()),
            None,
            "the removed admin's admission is void"
        );
        assert_eq!(r.role_of(&y.pk()), None, "and so is what followed from it");
        assert_eq!(
            r.why_not_counted(&admission.hash()),
            Some(&Denied::Voided { by: removal.hash() })
        );
        assert!(r.why_not_counted(&by_x.hash()).is_some());
    }
    assert_eq!(r1.state(), r2.state());
    // A credential issued after seeing the removal is simply refused.
    let err = r1
        .admit(admin.via_device(), y.pk(), Role::Reader)
        .unwrap_err();
    assert!(matches!(denied(err), Denied::IssuerNotMember { .. }));
    // Re-admission after the removal counts.
    r1.admit(owner.via_device(), x.pk(), Role::Reader).unwrap();
    assert_eq!(r1.role_of(&x.pk()), Some(Role::Reader));
}

#[test]
fn concurrent_statements_merge_to_least_privilege() {
    let (owner, a, b, m) = (Person::new(), Person::new(), Person::new(), Person::new());
    let mut r1 = new_space(&owner);
    join(&mut r1, &owner, &a, Role::Admin);
    join(&mut r1, &owner, &b, Role::Admin);
    join(&mut r1, &owner, &m, Role::Editor);
    let mut r2 = copy(&r1);
    r1.change_role(a.via_device(), m.pk(), Role::Admin).unwrap();
    r2.change_role(b.via_device(), m.pk(), Role::Reader)
        .unwrap();
    sync(&mut r1, &mut r2);
    assert_eq!(r1.role_of(&m.pk()), Some(Role::Reader));
    assert_eq!(r1.state(), r2.state());

    // Two admins removing each other concurrently: each removal is voided
    // by the other (its issuer was removed concurrently), so both stay.
    let mut r3 = copy(&r1);
    r1.remove(a.via_device(), b.pk()).unwrap();
    r3.remove(b.via_device(), a.pk()).unwrap();
    sync(&mut r1, &mut r3);
    assert_eq!(r1.state(), r3.state());
    assert_eq!(r1.role_of(&a.pk()), Some(Role::Admin));
    assert_eq!(r1.role_of(&b.pk()), Some(Role::Admin));
    // The owner's word settles it.
    r1.remove(owner.via_device(), b.pk()).unwrap();
    assert_eq!(r1.role_of(&b.pk()), None);
}

#[test]
fn credentials_wait_for_their_parents_and_cannot_cross_logs() {
    let (owner, a, x) = (Person::new(), Person::new(), Person::new());
    let mut s = new_space(&owner);
    let c1 = s.admit(owner.via_device(), a.pk(), Role::Admin).unwrap();
    let c2 = s.authorize_device((&a.id).into(), a.cert.clone()).unwrap();
    let c3 = s.admit(a.via_device(), x.pk(), Role::Reader).unwrap();
    let mut r = SpaceControl::from_genesis(s.genesis().clone()).unwrap();
    let got = r.receive(c3.clone()).unwrap();
    assert!(got.waiting && got.added.is_empty());
    assert!(r.receive(c2.clone()).unwrap().waiting);
    let got = r.receive_bytes(&c1.to_bytes()).unwrap();
    assert_eq!(got.added, vec![c1.hash(), c2.hash(), c3.hash()]);
    assert_eq!(r.state(), s.state());
    assert_eq!(r.waiting(), 0);
    // Receiving again is a no-op.
    assert!(r.receive(c3.clone()).unwrap().added.is_empty());

    // A credential replayed from another space.
    let mut other = new_space(&owner);
    let foreign = other
        .admit(owner.via_device(), x.pk(), Role::Admin)
        .unwrap();
    let err = s.receive(foreign).unwrap_err();
    assert_eq!(err.code(), "identity.wrong_log");
    assert_eq!(s.role_of(&x.pk()), Some(Role::Reader));
    // A second genesis is refused.
    let err = s.receive(other.genesis().clone()).unwrap_err();
    assert_eq!(err.code(), "identity.wrong_log");
    let forged_genesis = Credential::issue(
        LogId::Space(s.space()),
        vec![],
        (&x.id).into(),
        CredentialKind::Genesis { device: None },
    )
    .unwrap();
    assert_eq!(
        s.receive(forged_genesis).unwrap_err().code(),
        "identity.bad_genesis"
    );
}

#[test]
fn halo_tracks_an_identitys_devices() {
    let p = Person::new();
    let mut halo = Halo::create(&p.id).unwrap();
    halo.authorize_device((&p.id).into(), p.cert.clone())
        .unwrap();
    let second = DeviceKey::generate().unwrap();
    let cert2 =
        p.id.certify_device(&second.request_authorization(p.pk()))
            .unwrap();
    // The first device may add a sibling certified by the identity.
    halo.authorize_device(p.via_device(), cert2.clone())
        .unwrap();
    assert_eq!(halo.devices().len(), 2);
    assert_eq!(halo.certificate(&second.public_key()), Some(cert2));
    // Membership credentials have no place in a HALO log.
    let err = halo
        .issue(
            (&p.id).into(),
            CredentialKind::Admit {
                member: Person::new().pk(),
                role: Role::Editor,
            },
        )
        .unwrap_err();
    assert_eq!(denied(err), Denied::NotInHalo);
    halo.revoke_device(Issuer::device(&second, p.pk()), p.dev.public_key())
        .unwrap();
    assert_eq!(halo.devices(), vec![second.public_key()]);
    let copy = {
        let mut h = Halo::from_genesis(halo.genesis().clone()).unwrap();
        for c in halo.credentials().skip(1) {
            h.receive(c.clone()).unwrap();
        }
        h
    };
    assert_eq!(copy.state(), halo.state());
    assert!(SpaceControl::from_genesis(halo.genesis().clone()).is_err());
}

// ---------------------------------------------------- malicious suite

/// The honest history: owner, an admin, an editor and a reader; the
/// editor writes. Returns the space, the people, and the editor's doc.
struct World {
    s: SpaceControl,
    owner: Person,
    admin: Person,
    editor: Person,
    reader: Person,
    /// The replica that receives bundles: applies only accepted changes.
    replica: AutoCommit,
    /// What the replica must hold: only honest changes.
    honest: AutoCommit,
    /// The editor's own document (its actor is the editor's device).
    editor_doc: AutoCommit,
}

impl World {
    fn new() -> Self {
        let (owner, admin, editor, reader) =
            (Person::new(), Person::new(), Person::new(), Person::new());
        let mut s = new_space(&owner);
        join(&mut s, &owner, &admin, Role::Admin);
        join(&mut s, &admin, &editor, Role::Editor);
        join(&mut s, &admin, &reader, Role::Reader);
        let mut w = World {
            s,
            owner,
            admin,
            editor,
            reader,
            replica: AutoCommit::new(),
            honest: AutoCommit::new(),
            editor_doc: AutoCommit::new(),
        };
        w.editor_doc = doc_of(&w.editor);
        let c = write(&mut w.editor_doc, "title", "honest");
        let b = bundle(&w.s, &w.editor, &[c]);
        w.deliver(&b).unwrap();
        w
    }

    /// Verifies and applies like a peer would.
    fn deliver(&mut self, tb: &Tb) -> Result<(), Rejection> {
        let b = SignedChanges::from_bytes(&tb.b.to_bytes())?;
        verify(
            &self.s,
            &Tb {
                b,
                changes: tb.changes.clone(),
            },
        )?;
        self.replica.apply_changes(tb.changes.clone()).unwrap();
        self.honest.apply_changes(tb.changes.clone()).unwrap();
        Ok(())
    }

    fn reject(&mut self, b: &Tb) -> Rejection {
        let err = self.deliver(b).unwrap_err();
        assert_eq!(
            self.replica.get_heads(),
            self.honest.get_heads(),
            "honest data untouched"
        );
        err
    }

    fn title(&self) -> String {
        match self.replica.get(ROOT, "title").unwrap() {
            Some((v, _)) => v.as_str().unwrap_or_default().to_string(),
            None => String::new(),
        }
    }
}

#[test]
fn malicious_forged_signature() {
    let mut w = World::new();
    let attacker = Person::new();
    let c = write(&mut w.editor_doc, "title", "forged");
    // Signed by the attacker, claiming the editor's device.
    let runs = vec![run_of(std::slice::from_ref(&c))];
    let m = bundle::message_for(
        &w.s.space(),
        &w.editor.dev.public_key(),
        &w.s.heads(),
        &runs,
    );
    let forged = Tb {
        b: SignedChanges {
            version: bundle::BUNDLE_VERSION,
            space: w.s.space(),
            signer: w.editor.dev.public_key(),
            control_heads: w.s.heads(),
            runs: vec![runs[0].0],
            signature: attacker.dev.sign(&m),
        },
        changes: vec![c.clone()],
    };
    assert_eq!(w.reject(&forged), Rejection::BadSignature);
    // A valid bundle with its signature bits flipped.
    let mut good = bundle(&w.s, &w.editor, &[c]);
    let mut sig = good.b.signature.to_bytes();
    sig[5] ^= 0x40;
    good.b.signature = Signature::from_bytes(sig);
    assert_eq!(w.reject(&good), Rejection::BadSignature);
    assert_eq!(w.title(), "honest");
}

#[test]
fn a_bundle_cannot_be_moved_to_another_shard() {
    let mut w = World::new();
    let c = write(&mut w.editor_doc, "title", "in shard 0");
    let mut moved = bundle(&w.s, &w.editor, &[c]);
    moved.b.runs[0].shard = 1;
    assert_eq!(verify(&w.s, &moved), Err(Rejection::BadSignature));
}

#[test]
fn malicious_unauthorized_device() {
    let mut w = World::new();
    // A device with a valid certificate for the editor, never authorized in
    // this space.
    let rogue = DeviceKey::generate().unwrap();
    let mut doc = AutoCommit::new().with_actor(rogue.actor_id());
    let c = write(&mut doc, "title", "rogue");
    let b = sign(&rogue, w.s.space(), w.s.heads(), &[c]);
    let r = w.reject(&b);
    assert_eq!(
        r,
        Rejection::DeviceNotAuthorized {
            device: rogue.public_key()
        }
    );
    assert_eq!(r.code(), "identity.bundle.device_not_authorized");
    assert_eq!(w.title(), "honest");
}

#[test]
fn malicious_reader_write() {
    let mut w = World::new();
    let mut doc = doc_of(&w.reader);
    let c = write(&mut doc, "title", "reader was here");
    let b = bundle(&w.s, &w.reader, &[c]);
    assert_eq!(
        w.reject(&b),
        Rejection::ReadOnly {
            identity: w.reader.pk(),
            role: Role::Reader
        }
    );
    assert_eq!(w.title(), "honest");
}

#[test]
fn malicious_revoked_device_after_revocation() {
    let mut w = World::new();
    let before_heads = w.s.heads();
    let early = write(&mut w.editor_doc, "note", "written before revocation");
    let early_bundle = bundle(&w.s, &w.editor, std::slice::from_ref(&early));
    // The revoking admin had accepted the editor's changes up to `early`:
    // its revocation's watermark says so.
    let watermark = Watermark {
        devices: vec![DeviceWatermark {
            device: w.editor.dev.public_key(),
            shards: vec![(0, early.seq())],
        }],
    };
    w.s.issue_with(
        w.admin.via_device(),
        CredentialKind::RevokeDevice {
            identity: w.editor.pk(),
            device: w.editor.dev.public_key(),
        },
        watermark,
    )
    .unwrap();
    let late = write(&mut w.editor_doc, "title", "after revocation");
    let late_bundle = bundle(&w.s, &w.editor, &[late]);
    assert_eq!(
        w.reject(&late_bundle),
        Rejection::DeviceRevoked {
            device: w.editor.dev.public_key()
        }
    );
    // A later change signed with the heads from before the revocation
    // (backdated) is past the watermark: refused.
    let backdated = write(&mut w.editor_doc, "title", "backdated");
    let mut old_view = sign(
        &w.editor.dev,
        w.s.space(),
        before_heads.clone(),
        &[backdated],
    );
    old_view.b.control_heads = before_heads.clone();
    assert!(matches!(
        w.reject(&old_view),
        Rejection::BeyondWatermark { .. }
    ));
    // Changes the revoker had accepted stay acceptable.
    assert_eq!(early_bundle.b.control_heads, before_heads);
    w.deliver(&early_bundle).unwrap();
    assert_eq!(w.title(), "honest");
}

#[test]
fn only_the_identity_or_a_higher_role_revokes_a_device() {
    let w = World::new();
    let mut s = copy(&w.s);
    let second_admin = Person::new();
    join(&mut s, &w.owner, &second_admin, Role::Admin);
    // An admin cannot revoke the owner's device, nor another admin's.
    for (victim, dev) in [
        (&w.owner, w.owner.dev.public_key()),
        (&second_admin, second_admin.dev.public_key()),
    ] {
        let err = s
            .revoke_device(w.admin.via_device(), victim.pk(), dev)
            .unwrap_err();
        assert_eq!(denied(err), Denied::CannotRevoke);
    }
    // An editor cannot revoke a reader's device.
    let err = s
        .revoke_device(
            w.editor.via_device(),
            w.reader.pk(),
            w.reader.dev.public_key(),
        )
        .unwrap_err();
    assert_eq!(denied(err), Denied::CannotRevoke);
    // An admin revokes an editor's; the owner an admin's; anyone its own.
    s.revoke_device(
        w.admin.via_device(),
        w.editor.pk(),
        w.editor.dev.public_key(),
    )
    .unwrap();
    s.revoke_device(
        w.owner.via_device(),
        second_admin.pk(),
        second_admin.dev.public_key(),
    )
    .unwrap();
    s.revoke_device(
        w.reader.via_device(),
        w.reader.pk(),
        w.reader.dev.public_key(),
    )
    .unwrap();
}

#[test]
fn malicious_editor_promoting_itself() {
    let mut w = World::new();
    let heads = w.s.heads();
    let err =
        w.s.change_role(w.editor.via_device(), w.editor.pk(), Role::Admin)
            .unwrap_err();
    assert_eq!(err.code(), "identity.denied.role_too_low");
    // Crafted by hand and sent as if from a peer: refused the same way.
    let cred = Credential::issue(
        LogId::Space(w.s.space()),
        heads.clone(),
        w.editor.via_device(),
        CredentialKind::ChangeRole {
            member: w.editor.pk(),
            role: Role::Owner,
        },
    )
    .unwrap();
    let err = w.s.receive(cred).unwrap_err();
    assert!(matches!(denied(err), Denied::RoleTooLow { .. }));
    assert_eq!(w.s.heads(), heads, "nothing stored");
    assert_eq!(w.s.role_of(&w.editor.pk()), Some(Role::Editor));
}

#[test]
fn malicious_credential_replayed_from_another_space() {
    let mut w = World::new();
    let stranger = Person::new();
    // The admin is an admin elsewhere too; a credential from that space is
    // replayed here.
    let mut elsewhere = new_space(&w.admin);
    let c = elsewhere
        .admit(w.admin.via_device(), stranger.pk(), Role::Admin)
        .unwrap();
    let err = w.s.receive_bytes(&c.to_bytes()).unwrap_err();
    assert_eq!(err.code(), "identity.wrong_log");
    assert_eq!(w.s.role_of(&stranger.pk()), None);
    // So is a bundle signed for another space.
    let change = write(&mut w.editor_doc, "title", "elsewhere");
    let b = sign(
        &w.editor.dev,
        elsewhere.space(),
        elsewhere.heads(),
        &[change],
    );
    assert!(matches!(w.reject(&b), Rejection::WrongSpace { .. }));
    assert_eq!(w.title(), "honest");
}

#[test]
fn malicious_tampered_change_bytes() {
    let mut w = World::new();
    let c = write(&mut w.editor_doc, "title", "edited by the editor");
    let good = bundle(&w.s, &w.editor, std::slice::from_ref(&c));
    let raw = c.raw_bytes().to_vec();
    let len = raw.len();
    let mut rejected = 0;
    for pos in [len - 1, len / 2, 8] {
        let mut bytes = raw.clone();
        bytes[pos] ^= 0x01;
        // A tampered change either does not decode or hashes differently.
        if let Ok(tampered) = Change::from_bytes(bytes) {
            let mut b = good.clone();
            b.changes = vec![tampered];
            let r = w.reject(&b);
            assert!(
                matches!(
                    r,
                    Rejection::BadSignature
                        | Rejection::Malformed { .. }
                        | Rejection::ActorMismatch { .. }
                ),
                "{r:?}"
            );
        }
        rejected += 1;
    }
    assert_eq!(rejected, 3);
    // A change swapped for another of the same device's changes.
    let other = write(&mut w.editor_doc, "title", "other");
    let mut b = good.clone();
    b.changes = vec![other];
    assert!(matches!(
        w.reject(&b),
        Rejection::BadSignature | Rejection::Malformed { .. }
    ));
    // A change by another actor, correctly signed by the editor's device.
    let mut mallory = AutoCommit::new();
    let foreign = write(&mut mallory, "title", "foreign");
    let b = sign(
        &w.editor.dev,
        w.s.space(),
        w.s.heads(),
        std::slice::from_ref(&foreign),
    );
    assert!(matches!(
        w.reject(&b),
        Rejection::ActorMismatch { index: 0, .. }
    ));
    // Garbage bytes on the wire.
    assert!(SignedChanges::from_bytes(&[1, 2, 3]).is_err());
    assert_eq!(
        SignedChanges::from_bytes(&[]).unwrap_err().code(),
        "identity.bundle.malformed"
    );
    w.deliver(&good).unwrap();
    assert_eq!(w.title(), "edited by the editor");
}

#[test]
fn malicious_removed_admin_admits_concurrently() {
    let mut w = World::new();
    let intruder = Person::new();
    // The admin's replica has not seen the removal.
    let mut admins_view = copy(&w.s);
    let removal = w.s.remove(w.owner.via_device(), w.admin.pk()).unwrap();
    let admission = admins_view
        .admit(w.admin.via_device(), intruder.pk(), Role::Editor)
        .unwrap();
    admins_view
        .authorize_device((&intruder.id).into(), intruder.cert.clone())
        .unwrap();
    // The intruder writes, having seen its admission but not the removal.
    let mut doc = doc_of(&intruder);
    let c = write(&mut doc, "title", "intruder");
    let concurrent_bundle = bundle(&admins_view, &intruder, std::slice::from_ref(&c));
    sync(&mut w.s, &mut admins_view);
    assert_eq!(w.s.role_of(&intruder.pk()), None);
    assert_eq!(
        w.s.why_not_counted(&admission.hash()),
        Some(&Denied::Voided { by: removal.hash() })
    );
    // Once both are known, the intruder's writes are refused.
    let after = bundle(&w.s, &intruder, &[c]);
    let r = w.reject(&after);
    assert!(
        matches!(
            r,
            Rejection::NotAMember { .. } | Rejection::DeviceNotAuthorized { .. }
        ),
        "{r:?}"
    );
    assert_eq!(w.title(), "honest");
    // The write made before the intruder could know of the removal names a
    // cut without it: it is judged in that cut, identically everywhere (see
    // docs/membership.md, "What a bundle is judged against").
    assert!(verify(&w.s, &concurrent_bundle).is_ok());
    assert_eq!(w.s.state(), admins_view.state());
}

// ------------------------------------------------------------ convergence

#[derive(Clone, Debug)]
enum Op {
    /// Person `who` on replica `at` issues a credential of `kind` about
    /// `target` (role `role`).
    Issue {
        at: usize,
        who: usize,
        kind: u8,
        target: usize,
        role: u8,
    },
    /// Person `who` writes on replica `at` (signs with its view of the log).
    Write { at: usize, who: usize },
    /// Replicas exchange credentials.
    Sync { a: usize, b: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..5usize, 0..5u8, 0..5usize, 0..3u8).prop_map(|(at, who, kind, target, role)| Op::Issue { at, who, kind, target, role }),
        3 => (0..3usize, 0..5usize).prop_map(|(at, who)| Op::Write { at, who }),
        2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Sync { a, b }),
    ]
}

enum Item {
    Cred(Box<Credential>),
    Bundle(Tb),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        ops in proptest::collection::vec(op(), 5..40),
        orders in proptest::collection::vec(any::<u64>(), 3),
    ) {
        let people: Vec<Person> = (0..5).map(|_| Person::new()).collect();
        let owner = &people[0];
        let genesis_space = new_space(owner);
        let mut writers: Vec<AutoCommit> = people.iter().map(doc_of).collect();
        let mut issuers: Vec<SpaceControl> = (0..3).map(|_| copy(&genesis_space)).collect();
        let mut items: Vec<Item> = Vec::new();
        let mut n = 0;
        for op in ops {
            match op {
                Op::Issue { at, who, kind, target, role } => {
                    let p = &people[who];
                    let t = &people[target];
                    let role = [Role::Reader, Role::Editor, Role::Admin][role as usize];
                    let kind = match kind {
                        0 => CredentialKind::Admit { member: t.pk(), role },
                        1 => CredentialKind::ChangeRole { member: t.pk(), role },
                        2 => CredentialKind::Remove { member: t.pk() },
                        3 => CredentialKind::AuthorizeDevice { certificate: p.cert.clone() },
                        _ => CredentialKind::RevokeDevice { identity: t.pk(), device: t.dev.public_key() },
                    };
                    // Device authorizations are signed by the identity key;
                    // everything else by the device.
                    let by = if matches!(kind, CredentialKind::AuthorizeDevice { .. }) {
                        Issuer::from(&p.id)
                    } else {
                        p.via_device()
                    };
                    let log = &mut issuers[at];
                    let cred = Credential::issue(log.log_id(), log.heads(), by, kind).unwrap();
                    // Refused credentials are delivered too: every replica
                    // must refuse them alike.
                    let _ = log.receive(cred.clone());
                    items.push(Item::Cred(Box::new(cred)));
                }
                Op::Write { at, who } => {
                    n += 1;
                    let c = write(&mut writers[who], &format!("k{who}"), &format!("v{n}"));
                    let b = sign(&people[who].dev, genesis_space.space(), issuers[at].heads(), &[c]);
                    items.push(Item::Bundle(b));
                }
                Op::Sync { a, b } if a != b => {
                    let (x, y) = if a < b { (a, b) } else { (b, a) };
                    let (left, right) = issuers.split_at_mut(y);
                    sync(&mut left[x], &mut right[0]);
                }
                Op::Sync { .. } => {}
            }
        }

        let mut results = Vec::new();
        for seed in orders {
            // A deterministic shuffle from the seed.
            let mut order: Vec<usize> = (0..items.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut s = SpaceControl::from_genesis(genesis_space.genesis().clone()).unwrap();
            // Bundles whose credentials have not arrived wait, then are
            // judged again as credentials come.
            // As a replica does: a restriction that arrives later voids
            // accepted bundles past its watermark (see docs/membership.md),
            // so every known bundle is judged again as credentials come.
            let mut known: Vec<&Tb> = Vec::new();
            for i in order {
                match &items[i] {
                    Item::Cred(c) => {
                        let _ = s.receive((**c).clone());
                    }
                    Item::Bundle(tb) => known.push(tb),
                }
            }
            let mut pending = Vec::new();
            let mut accepted = Vec::new();
            let mut rejected = Vec::new();
            let mut doc = AutoCommit::new();
            for tb in known {
                match verify(&s, tb) {
                    Ok(()) => {
                        doc.apply_changes(tb.changes.clone()).unwrap();
                        accepted.push(tb.b.signature);
                    }
                    Err(r) if r.is_retryable() => pending.push(tb),
                    Err(r) => rejected.push((tb.b.signature, r)),
                }
            }
            let rebuilt = s.state().clone();
            prop_assert_eq!(s.recompute(), &rebuilt, "incremental state == state from scratch");
            accepted.sort_by_key(|s| s.to_bytes());
            rejected.sort_by_key(|(s, _)| s.to_bytes());
            let mut heads = doc.get_heads();
            heads.sort();
            results.push((rebuilt, s.heads(), accepted, rejected, heads, pending.len()));
        }
        prop_assert_eq!(&results[0], &results[1]);
        prop_assert_eq!(&results[0], &results[2]);
    }
}
