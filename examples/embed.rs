//! Embedding steward in a ractor application.
//!
//! Run with `cargo run --example embed`.
//!
//! The app spawns a steward runtime inside its own tokio runtime, defines a service in
//! code, and subscribes one of its own actors to the event stream: the actor prints every
//! event it receives. The service prints three ticks and exits; once steward reports it
//! `exited`, the app shuts the runtime down.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use steward::config::RestartPolicy;
use steward::{CommandSpec, EventItem, EventKind, ServiceDefinition, Steward};
use tokio::sync::oneshot;

/// An actor of the embedding app that prints steward's events.
struct EventPrinter;

impl Actor for EventPrinter {
    type Msg = EventItem;
    /// Fired when the ticker service has exited.
    type State = Option<oneshot::Sender<()>>;
    type Arguments = oneshot::Sender<()>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        done: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Some(done))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        item: Self::Msg,
        done: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match item {
            EventItem::Event(e) => {
                println!(
                    "event #{} {} {}{}",
                    e.seq,
                    e.service,
                    e.kind.as_str(),
                    e.cause.map(|c| format!(" ({c})")).unwrap_or_default()
                );
                if e.service == "ticker"
                    && e.kind == EventKind::Exited
                    && let Some(done) = done.take()
                {
                    let _ = done.send(());
                }
            }
            EventItem::Gap { missed } => println!("missed {missed} events"),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steward = Steward::spawn().await?;

    // The app's actor subscribes itself to steward's events.
    let (done_tx, done_rx) = oneshot::channel();
    let (printer, _) = Actor::spawn(None, EventPrinter, done_tx).await?;
    steward
        .subscribe_events(None)
        .await?
        .forward_to(printer.clone());

    // A service defined in code: three ticks, then a clean exit that is not restarted.
    let mut ticker = ServiceDefinition::new(
        "ticker",
        CommandSpec::Argv(vec![
            "sh".into(),
            "-c".into(),
            "for i in 1 2 3; do echo tick $i; sleep 0.2; done".into(),
        ]),
    );
    ticker.restart = RestartPolicy::Temporary;
    steward.define(ticker).await?;

    tokio::time::timeout(Duration::from_secs(30), done_rx).await??;
    for line in steward.logs("ticker", 10).await? {
        println!("log #{} {}", line.seq, line.line);
    }
    steward.shutdown().await?;
    printer.stop(None);
    Ok(())
}
