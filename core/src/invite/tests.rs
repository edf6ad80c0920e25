//! The invitation handshake between a host and a guest session, without
//! a vault: right and wrong codes, a host that is not the one the code
//! names, a relay that swaps or replays messages.

use super::*;
use crate::identity::{DeviceCertificate, DeviceKey, IdentityKey, Role};
use crate::rng::EngineRng;

struct Party {
    identity: IdentityKey,
    device: DeviceKey,
    certificate: DeviceCertificate,
}

fn party(rng: &mut EngineRng) -> Party {
    let identity = IdentityKey::from_seed(&rng.secret_seed());
    let device = DeviceKey::from_seed(&rng.secret_seed());
    let certificate = identity
        .certify_device(&device.request_authorization(identity.public_key()))
        .expect("certify");
    Party {
        identity,
        device,
        certificate,
    }
}

fn invite(host: &Party, rng: &mut EngineRng) -> InviteCode {
    InviteCode {
        id: InvitationId::random(rng),
        host: DeviceFingerprint::of(&host.device.public_key()),
        expires_at: 1_000_000,
        kind: InviteKind::Space,
        role: Role::Editor,
    }
}

/// Host and guest connected: the guest is ready for the code.
fn connect(rng: &mut EngineRng) -> (Party, Party, HostSession, GuestSession) {
    let host = party(rng);
    let guest = party(rng);
    let code = invite(&host, rng);
    let (mut g, hello) = GuestSession::start(code.clone(), rng);
    let hello = InviteWire::decode(&hello.encode()).expect("hello decodes");
    let (h, accept) = HostSession::accept(code.id, &host.device, &hello, rng).expect("accept");
    let step = g
        .on_message(&accept, &guest.device, &guest.certificate, None)
        .expect("accept verifies");
    assert!(matches!(step, GuestStep::Wait));
    assert_eq!(g.state(), GuestState::ReadyForCode);
    (host, guest, h, g)
}

/// One attempt with `typed`: the host's step after the guest's confirm.
fn attempt(
    rng: &mut EngineRng,
    guest: &Party,
    h: &mut HostSession,
    g: &mut GuestSession,
    typed: &AuthCode,
) -> HostStep {
    let pake = g.enter_code(typed, rng).expect("enter code");
    let HostStep::Attempt { reply } = h.on_message(&pake, rng).expect("pake") else {
        panic!("the first message of an attempt is counted")
    };
    let GuestStep::Send(confirm) = g
        .on_message(
            &reply,
            &guest.device,
            &guest.certificate,
            Some("Bea".into()),
        )
        .expect("reply")
    else {
        panic!("the guest confirms")
    };
    h.on_message(&confirm, rng).expect("confirm")
}

#[test]
fn the_right_code_admits_the_guest_with_its_verified_identity() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(1));
    let (host, guest, mut h, mut g) = connect(&mut rng);
    let code = h.auth_code().clone();
    assert_eq!(code.as_str().len(), 6);
    let HostStep::Admit(verified) = attempt(&mut rng, &guest, &mut h, &mut g, &code) else {
        panic!("the right code admits")
    };
    assert_eq!(verified.identity(), guest.identity.public_key());
    assert_eq!(verified.certificate.device, guest.device.public_key());
    assert_eq!(verified.display_name.as_deref(), Some("Bea"));
    let done = h.admitted("export".into(), host.identity.public_key(), Role::Editor);
    match g
        .on_message(&done, &guest.device, &guest.certificate, None)
        .expect("admitted")
    {
        GuestStep::Admitted {
            export,
            host_identity,
            role,
        } => {
            assert_eq!(export, "export");
            assert_eq!(host_identity, host.identity.public_key());
            assert_eq!(role, Role::Editor);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.state(), GuestState::Done);
}

#[test]
fn a_wrong_code_is_refused_and_the_guest_sends_no_credentials() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(2));
    let (_host, guest, mut h, mut g) = connect(&mut rng);
    let right = h.auth_code().clone();
    let wrong = AuthCode::parse(if right.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .expect("six digits");
    let pake = g.enter_code(&wrong, &mut rng).expect("enter");
    let HostStep::Attempt { reply } = h.on_message(&pake, &mut rng).expect("pake") else {
        panic!()
    };
    let GuestStep::Send(confirm) = g
        .on_message(&reply, &guest.device, &guest.certificate, None)
        .expect("reply")
    else {
        panic!()
    };
    // The guest saw the host's tag fail: its confirm carries no
    // credentials (it is far smaller than one that does).
    let InviteWire::Sealed { body: bare, .. } = &confirm else {
        panic!()
    };
    assert!(
        bare.len() < 80,
        "{} bytes: credentials sent with a wrong code",
        bare.len()
    );
    assert!(matches!(
        h.on_message(&confirm, &mut rng),
        Ok(HostStep::Wrong)
    ));
    let wrong_code = h.wrong_code(2);
    assert!(matches!(
        g.on_message(&wrong_code, &guest.device, &guest.certificate, None),
        Ok(GuestStep::WrongCode { attempts_left: 2 })
    ));
    // A second attempt in the same session, with the right code, admits.
    assert!(matches!(
        attempt(&mut rng, &guest, &mut h, &mut g, &right),
        HostStep::Admit(_)
    ));
}

#[test]
fn a_guest_refuses_a_host_other_than_the_one_the_code_names() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(3));
    let host = party(&mut rng);
    let impostor = party(&mut rng);
    let guest = party(&mut rng);
    let code = invite(&host, &mut rng);
    let (mut g, hello) = GuestSession::start(code.clone(), &mut rng);
    let (_, accept) =
        HostSession::accept(code.id, &impostor.device, &hello, &mut rng).expect("accept");
    assert_eq!(
        g.on_message(&accept, &guest.device, &guest.certificate, None)
            .unwrap_err(),
        InviteError::HostMismatch
    );
    assert_eq!(g.state(), GuestState::Done);
}

#[test]
fn a_relay_that_swaps_the_keys_is_caught() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(4));
    let host = party(&mut rng);
    let guest = party(&mut rng);
    let code = invite(&host, &mut rng);
    // The relay answers the host with its own key in the guest's hello…
    let (mut g, hello) = GuestSession::start(code.clone(), &mut rng);
    let (_relay_session, relay_hello) = GuestSession::start(code.clone(), &mut rng);
    let (_, accept) =
        HostSession::accept(code.id, &host.device, &relay_hello, &mut rng).expect("accept");
    // … and hands the host's (signed) accept to the guest: the signature
    // covers the relay's key, not the guest's.
    let _ = hello;
    assert_eq!(
        g.on_message(&accept, &guest.device, &guest.certificate, None)
            .unwrap_err(),
        InviteError::HostMismatch
    );
    // Swapping the host's key in a real accept breaks the signature too.
    let (mut g2, hello2) = GuestSession::start(code.clone(), &mut rng);
    let (_, accept2) =
        HostSession::accept(code.id, &host.device, &hello2, &mut rng).expect("accept");
    let InviteWire::Accept {
        host_device,
        signature,
        ..
    } = accept2
    else {
        panic!()
    };
    let forged = InviteWire::Accept {
        host_dh: [9; 32],
        host_device,
        signature,
    };
    assert_eq!(
        g2.on_message(&forged, &guest.device, &guest.certificate, None)
            .unwrap_err(),
        InviteError::HostMismatch
    );
}

#[test]
fn a_replayed_or_foreign_sealed_message_is_rejected() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(5));
    let (_host, _guest, mut h, mut g) = connect(&mut rng);
    let code = h.auth_code().clone();
    let pake = g.enter_code(&code, &mut rng).expect("enter");
    assert!(matches!(
        h.on_message(&pake, &mut rng),
        Ok(HostStep::Attempt { .. })
    ));
    // The same message again: out of sequence.
    assert!(matches!(
        h.on_message(&pake, &mut rng),
        Err(InviteError::Protocol(_))
    ));
    // A message sealed in another session does not open in this one,
    // even at the sequence number it expects.
    let (_, _, mut other_h, _) = connect(&mut rng);
    let (_, guest2, _, mut g2) = connect(&mut rng);
    let foreign = other_h.wrong_code(2);
    assert!(matches!(
        g2.on_message(&foreign, &guest2.device, &guest2.certificate, None),
        Err(InviteError::Protocol(_))
    ));
}

#[test]
fn a_code_cannot_be_typed_before_the_host_answered() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(6));
    let host = party(&mut rng);
    let (mut g, _hello) = GuestSession::start(invite(&host, &mut rng), &mut rng);
    assert_eq!(
        g.enter_code(&AuthCode::parse("123456").expect("digits"), &mut rng)
            .unwrap_err(),
        InviteError::NotReady
    );
}

#[test]
fn a_host_refusal_reaches_the_guest_as_its_error() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(7));
    let host = party(&mut rng);
    let guest = party(&mut rng);
    let (mut g, _hello) = GuestSession::start(invite(&host, &mut rng), &mut rng);
    let refuse = InviteWire::Refuse {
        reason: Refusal::Expired,
    };
    let err = g
        .on_message(&refuse, &guest.device, &guest.certificate, None)
        .unwrap_err();
    assert_eq!(err, InviteError::Expired);
    assert_eq!(err.code(), "invite.expired");
}

#[test]
fn invite_codes_survive_text_and_links_and_refuse_garbage() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(8));
    let host = party(&mut rng);
    let code = invite(&host, &mut rng);
    let text = code.to_text();
    assert!(text.starts_with("echo-invite-"), "{text}");
    assert!(text.len() < 120, "{} characters", text.len());
    assert_eq!(InviteCode::from_text(&text), Ok(code.clone()));
    assert_eq!(
        InviteCode::from_text(&format!("  {}\n", text.to_uppercase())),
        Ok(code.clone())
    );
    let link = format!("http://vault.localhost:8600/invite.html#{text}");
    assert_eq!(InviteCode::from_text(&link), Ok(code.clone()));
    assert!(matches!(
        InviteCode::from_text("hello"),
        Err(InviteError::BadCode(_))
    ));
    assert!(matches!(
        InviteCode::from_text(&text[..text.len() - 5]),
        Err(InviteError::BadCode(_))
    ));
    assert!(matches!(
        InviteCode::from_text(&"x".repeat(10_000)),
        Err(InviteError::BadCode(_))
    ));
    // A newer format is named as such.
    let newer = format!(
        "echo-invite-{}",
        data_encoding::BASE32_NOPAD
            .encode(&[9, 1, 2, 3])
            .to_ascii_lowercase()
    );
    assert_eq!(
        InviteCode::from_text(&newer),
        Err(InviteError::UnsupportedVersion(9))
    );
    // The topic is the id's, and differs per invitation.
    assert_eq!(code.id.topic(), InvitationId(code.id.0).topic());
    assert_ne!(code.id.topic(), InvitationId::random(&mut rng).topic());
    assert_eq!(InvitationId::from_hex(&code.id.to_hex()), Some(code.id));
}

#[test]
fn authorization_codes_are_six_digits_as_typed() {
    let mut rng = EngineRng::from_seed(EngineRng::seed_from_u64(9));
    for _ in 0..100 {
        let code = AuthCode::random(&mut rng);
        assert_eq!(AuthCode::parse(code.as_str()), Ok(code.clone()));
    }
    assert_eq!(
        AuthCode::parse(" 123-456 ").map(|c| c.as_str().to_owned()),
        Ok("123456".into())
    );
    assert_eq!(AuthCode::parse("12345"), Err(InviteError::BadAuthCode));
    assert_eq!(AuthCode::parse("12345a"), Err(InviteError::BadAuthCode));
    assert_eq!(
        format!("{:?}", AuthCode::parse("123456").unwrap()),
        "AuthCode(******)"
    );
}
