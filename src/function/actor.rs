//! A ractor actor as a function service: [`FunctionService::actor`].
//!
//! For each run, steward builds the actor and its arguments with the embedder's factory,
//! spawns it linked to a small watcher actor of its own (the actor's supervisor, which only
//! listens), and waits:
//!
//! * the actor stops by itself → the function returned `Ok(())` (exit code 0);
//! * the actor fails (a panic or an error in one of its handlers, which ractor turns into
//!   a supervision event) → the function returned an error, `actor failed: …`;
//! * steward stops the service → the actor is asked to stop (`ActorRef::stop`, its
//!   `post_stop` runs) and its end is awaited; past `stop_timeout` the task is aborted and
//!   a drop guard kills the actor (`ActorCell::kill`), like a SIGKILL after the grace.
//!
//! So OTP's vocabulary holds across the boundary: the actor is a child of steward's tree,
//! restarted by the service's policy, backoff and intensity.

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc;

use super::{FunctionService, ServiceContext};

/// How the actor of a run ended, as its watcher saw it.
#[derive(Debug)]
enum ActorEnd {
    /// It stopped (by itself, or on steward's request).
    Stopped,
    /// It failed: ractor's words for the panic or error.
    Failed(String),
}

/// The supervisor of one run's actor: it only reports how the actor ended.
struct ActorWatch;

impl Actor for ActorWatch {
    type Msg = ();
    type State = mpsc::UnboundedSender<ActorEnd>;
    type Arguments = mpsc::UnboundedSender<ActorEnd>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        ends: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ends)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        ends: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let end = match event {
            SupervisionEvent::ActorTerminated(..) => ActorEnd::Stopped,
            SupervisionEvent::ActorFailed(_, error) => ActorEnd::Failed(error.to_string()),
            _ => return Ok(()),
        };
        let _ = ends.send(end);
        Ok(())
    }
}

/// Kills an actor when dropped (the run's task was aborted while the actor lived).
struct KillOnDrop(Option<ActorCell>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(cell) = self.0.take() {
            cell.kill();
        }
    }
}

impl FunctionService {
    /// A ractor actor as a function service: `make` builds the actor and its startup
    /// arguments for each run (hand the [`ServiceContext`] to the actor through them, to
    /// log and report readiness). See the [module docs](self) for how its end maps.
    ///
    /// ```no_run
    /// use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// use steward::{FunctionService, ServiceContext};
    ///
    /// struct Consumer;
    /// impl Actor for Consumer {
    ///     type Msg = String;
    ///     type State = ServiceContext;
    ///     type Arguments = ServiceContext;
    ///     async fn pre_start(&self, _me: ActorRef<String>, ctx: ServiceContext)
    ///         -> Result<ServiceContext, ActorProcessingErr> {
    ///         ctx.ready();
    ///         Ok(ctx)
    ///     }
    /// }
    ///
    /// let consumer = FunctionService::actor("queue consumer", |ctx| (Consumer, ctx));
    /// ```
    pub fn actor<A, F>(name: impl Into<String>, make: F) -> Self
    where
        A: Actor,
        F: Fn(ServiceContext) -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = std::sync::Arc::new(make);
        FunctionService::new(name, move |ctx: ServiceContext| {
            let make = make.clone();
            async move { run_actor(ctx, make.as_ref()).await }
        })
    }
}

/// One run: spawn the watch and the actor, wait for the actor's end or a stop.
async fn run_actor<A, F>(ctx: ServiceContext, make: &F) -> Result<(), String>
where
    A: Actor,
    F: Fn(ServiceContext) -> (A, A::Arguments),
{
    let (tx, mut ends) = mpsc::unbounded_channel();
    let (watch, _) = Actor::spawn(None, ActorWatch, tx)
        .await
        .map_err(|e| format!("could not start the actor's watch: {e}"))?;
    // Dropped last: the actor goes first, then its watch.
    let _watch = KillOnDrop(Some(watch.get_cell()));
    let (actor, args) = make(ctx.clone());
    let (actor, _) = Actor::spawn_linked(None, actor, args, watch.get_cell())
        .await
        .map_err(|e| format!("the actor could not start: {e}"))?;
    let mut alive = KillOnDrop(Some(actor.get_cell()));
    let end = tokio::select! {
        end = ends.recv() => end,
        () = ctx.cancelled() => {
            actor.stop(Some("stop requested".to_string()));
            ends.recv().await
        }
    };
    alive.0 = None;
    match end {
        Some(ActorEnd::Stopped) => Ok(()),
        Some(ActorEnd::Failed(why)) => Err(format!("actor failed: {why}")),
        None => Err("the actor's watch stopped".to_string()),
    }
}
