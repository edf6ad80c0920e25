//! Two native vaults, each on its own FileStore, share a space over a real
//! loopback TCP connection (Noise, then the vault protocol), converge,
//! edit live, and do it again after both restart from their files.
//! The setup mirrors the simulator's `share` (sim/src/scenario.rs).

use std::time::Duration;

use echo_core::rpc::{
    AdminRequest, AdminResponse, Request, Response, Role, WireFields, WireObject, WireValue,
};
use echo_core::vault::VaultEvent;
use echo_node::{AppPort, NativeVault, NodeEvent};
use echo_sim::scenario::{note, notes_query, APP};
use tokio::sync::broadcast;
use tokio::time::Instant;

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long convergence may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// Connects [`APP`] and grants it `spaces` (and creating new ones).
async fn allow(v: &NativeVault, spaces: Vec<String>) -> R<AppPort> {
    let app = v.connect_app(APP).await?;
    v.admin(AdminRequest::Decide {
        origin: APP.into(),
        allow: true,
        spaces,
    })
    .await?;
    Ok(app)
}

async fn identity_of(v: &NativeVault) -> R<String> {
    match v.admin(AdminRequest::Status {}).await? {
        AdminResponse::Status { identity, .. } => Ok(identity.identity_key),
        other => Err(format!("status: {other:?}").into()),
    }
}

/// Every note of `space` as `app` reads it, ordered by id.
async fn notes(app: &mut AppPort, space: &str) -> R<Vec<WireObject>> {
    let q = notes_query(space);
    match app.call(q).await? {
        Response::Result { objects, .. } => {
            let mut o = objects.unwrap_or_default();
            o.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(o)
        }
        other => Err(format!("query: {other:?}").into()),
    }
}

/// Polls until `app` reads `n` notes.
async fn wait_for_notes(app: &mut AppPort, space: &str, n: usize) -> R<Vec<WireObject>> {
    let end = Instant::now() + PATIENCE;
    loop {
        let got = notes(app, space).await?;
        if got.len() == n {
            return Ok(got);
        }
        if Instant::now() > end {
            return Err(format!("{} notes after {PATIENCE:?}, not {n}", got.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node's events, as they come and all seen so far.
struct Events {
    rx: broadcast::Receiver<NodeEvent>,
    seen: Vec<NodeEvent>,
}

impl Events {
    fn of(v: &NativeVault) -> Self {
        Events {
            rx: v.subscribe(),
            seen: Vec::new(),
        }
    }

    /// Waits until what was seen satisfies `done`.
    async fn until(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&[NodeEvent]) -> bool,
    ) -> R<()> {
        let end = Instant::now() + within;
        while !done(&self.seen) {
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Ok(NodeEvent::HostError(e))) => return Err(format!("host error: {e}").into()),
                Ok(Ok(e)) => self.seen.push(e),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(format!("no more events, waiting for {what}").into())
                }
                Err(_) => return Err(format!("{what}: not in {:?}", self.seen).into()),
            }
        }
        Ok(())
    }

    async fn sync_started(&mut self) -> R<()> {
        self.until("a sync started", PATIENCE, |seen| {
            seen.iter()
                .any(|e| matches!(e, NodeEvent::Vault(VaultEvent::SyncStarted { .. })))
        })
        .await
    }

    /// Waits until a link goes down: soon after its peer closed it (well
    /// before the vault's idle timeout would notice).
    async fn link_down(&mut self) -> R<()> {
        self.until("a link down", Duration::from_secs(5), |seen| {
            seen.iter().any(|e| matches!(e, NodeEvent::LinkDown { .. }))
        })
        .await
    }

    fn authenticated(&self) -> bool {
        self.seen
            .iter()
            .any(|e| matches!(e, NodeEvent::Vault(VaultEvent::PeerAuthenticated { .. })))
    }
}

async fn write(app: &mut AppPort, request: Request) -> R<Response> {
    Ok(app.call(request).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_vaults_share_a_space_over_tcp_and_survive_a_restart() -> R<()> {
    let started = std::time::Instant::now();
    let dir_a = tempfile::tempdir()?;
    let dir_b = tempfile::tempdir()?;
    let a = NativeVault::start(dir_a.path()).await?;
    let b = NativeVault::start(dir_b.path()).await?;

    // A: an allowed app creates a space and writes.
    let mut app_a = allow(&a, vec![]).await?;
    let space = match write(
        &mut app_a,
        Request::CreateSpace {
            properties: WireFields::new(),
        },
    )
    .await?
    {
        Response::Space(info) => info.space,
        other => return Err(format!("create: {other:?}").into()),
    };
    for i in 0..5 {
        write(&mut app_a, note(&space, &format!("before {i}"))).await?;
    }
    // A admits B's identity and exports; B joins; B's app gets the space.
    let identity = identity_of(&b).await?;
    a.admin(AdminRequest::Admit {
        space: space.clone(),
        identity,
        role: Role::Editor,
    })
    .await?;
    let AdminResponse::Export { export } = a
        .admin(AdminRequest::Export {
            space: space.clone(),
        })
        .await?
    else {
        return Err("export".into());
    };
    let joined = b.admin(AdminRequest::Join { export }).await?;
    assert!(matches!(joined, AdminResponse::Joined { .. }), "{joined:?}");
    let mut app_b = allow(&b, vec![space.clone()]).await?;
    assert!(notes(&mut app_b, &space).await?.is_empty());

    // B dials A over loopback TCP; B's app comes to read what A wrote.
    let mut events_b = Events::of(&b);
    let addr = a.listen("127.0.0.1:0".parse()?).await?;
    b.dial(addr).await?;
    let seen = wait_for_notes(&mut app_b, &space, 5).await?;
    assert_eq!(seen, notes(&mut app_a, &space).await?);
    events_b.sync_started().await?;
    assert!(
        events_b.authenticated(),
        "B authenticated A over the Noise binding"
    );
    // Live: B writes, A sees it.
    write(&mut app_b, note(&space, "from b")).await?;
    let a_sees = wait_for_notes(&mut app_a, &space, 6).await?;
    assert_eq!(a_sees, notes(&mut app_b, &space).await?);
    eprintln!("first sync and live edit: {:?}", started.elapsed());

    // Both stop, and start again from their directories. B hears at
    // once that A went away (not only after the vault's idle timeout).
    drop((app_a, app_b));
    a.stop().await?;
    events_b.seen.clear();
    events_b.link_down().await?;
    b.stop().await?;
    let a = NativeVault::start(dir_a.path()).await?;
    let b = NativeVault::start(dir_b.path()).await?;
    let mut app_a = allow(&a, vec![space.clone()]).await?;
    let mut app_b = allow(&b, vec![space.clone()]).await?;
    let stored_a = notes(&mut app_a, &space).await?;
    assert_eq!(stored_a.len(), 6, "A's notes survived the restart");
    assert_eq!(
        notes(&mut app_b, &space).await?,
        stored_a,
        "so did B's, and they agree"
    );

    // Reconnected, each writes while the space syncs; both see everything.
    let mut events_a = Events::of(&a);
    let mut events_b = Events::of(&b);
    let addr = a.listen("127.0.0.1:0".parse()?).await?;
    b.dial(addr).await?;
    // A second connection between the same devices: the vaults keep one
    // and close the other, which ends its TCP connection on both sides.
    b.dial(addr).await?;
    for events in [&mut events_a, &mut events_b] {
        events.link_down().await?;
        events.sync_started().await?;
    }
    write(&mut app_a, note(&space, "after a")).await?;
    write(&mut app_b, note(&space, "after b")).await?;
    let a_sees = wait_for_notes(&mut app_a, &space, 8).await?;
    let b_sees = wait_for_notes(&mut app_b, &space, 8).await?;
    assert_eq!(a_sees, b_sees);
    let titles: Vec<&WireValue> = a_sees
        .iter()
        .filter_map(|o| o.fields.get("title"))
        .collect();
    for t in ["from b", "after a", "after b"] {
        assert!(
            titles.contains(&&WireValue::String(t.into())),
            "{t} in {titles:?}"
        );
    }
    drop((app_a, app_b));
    a.stop().await?;
    b.stop().await?;
    eprintln!("whole test: {:?}", started.elapsed());
    Ok(())
}
