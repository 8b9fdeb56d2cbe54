//! HealthChecker: runs a service's startup, readiness and liveness probes and reports
//! verdicts (after the thresholds) to the Server.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::config::ServiceDefinition;
use crate::runtime::server::ServerMsg;

/// Messages to a HealthChecker.
#[derive(Debug)]
pub enum HealthCheckerMsg {
    /// A process started: begin probing it (startup first, if any).
    Watch {
        /// The Server's run number, echoed in verdicts.
        run: u64,
        /// The service's resolved environment, for command probes.
        env: Arc<Vec<(String, String)>>,
    },
    /// The process is gone: stop probing, forget counters.
    Unwatch,
    /// The process group is frozen: stop probing without a verdict.
    Suspend,
    /// The process group is thawed: probe again (counters start afresh).
    Resume,
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}

/// Arguments of a HealthChecker.
#[derive(Debug, Clone)]
pub struct HealthCheckerArgs {
    /// The service.
    pub definition: Arc<ServiceDefinition>,
    /// Where verdicts go.
    pub server: ActorRef<ServerMsg>,
    /// Shared HTTP client.
    pub http: reqwest::Client,
}

/// State of a HealthChecker.
#[derive(Debug)]
pub struct HealthCheckerState {}

/// The HealthChecker actor.
#[derive(Debug, Default)]
pub struct HealthChecker;

impl Actor for HealthChecker {
    type Msg = HealthCheckerMsg;
    type State = HealthCheckerState;
    type Arguments = HealthCheckerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: HealthCheckerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(HealthCheckerState {})
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let HealthCheckerMsg::Panic(why) = msg {
            panic!("{why}");
        }
        Ok(())
    }
}
