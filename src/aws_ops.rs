//! The deployed stack for the operators' commands (`--aws`): each setting from its flag or from
//! the environment variable the Lambda functions read, a missing one named together with the
//! stack output that holds it, and the adapters on the AWS SDK's own credential, region and
//! endpoint chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use aws_config::SdkConfig;
use lector_aws::archive::ARCHIVE_VAR;
use lector_aws::feed_index::{DynamoFeedIndex, FEED_TABLE_VAR};
use lector_aws::index::{DynamoConversionIndex, INDEX_TABLE_VAR};
use lector_aws::settings::{STATE_MACHINE_VAR, TABLE_VAR};
use lector_aws::{DynamoEventStore, StepFunctions};
use lector_core::EventStore;
use lector_core::ports::{ExecutionInfo, WorkflowError, Workflows};
use serde_json::Value;

/// The stack `samconfig.toml` deploys by default.
pub const DEFAULT_STACK: &str = "lector";

/// A setting of the deployed stack: its variable, its flag and the stack output holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub var: &'static str,
    pub flag: &'static str,
    pub output: &'static str,
}

pub const EVENT_TABLE: Setting = Setting { var: TABLE_VAR, flag: "--table", output: "EventTableName" };
pub const LIST_TABLE: Setting =
    Setting { var: INDEX_TABLE_VAR, flag: "--list-table", output: "ListTableName" };
pub const STATE_MACHINE: Setting =
    Setting { var: STATE_MACHINE_VAR, flag: "--state-machine-arn", output: "StateMachineArn" };
pub const FEED_TABLE: Setting =
    Setting { var: FEED_TABLE_VAR, flag: "--feed-table", output: "FeedTableName" };
pub const ARCHIVE: Setting = Setting { var: ARCHIVE_VAR, flag: "--archive", output: "EventArchiveName" };

impl Setting {
    /// Why the setting is needed and where to find it.
    pub fn missing(&self) -> String {
        format!(
            "{} is not set (nor {} given): it is the stack's {} output \
             (`sam list stack-outputs --stack-name {DEFAULT_STACK}`, or your stack's name)",
            self.var, self.flag, self.output
        )
    }

    /// The value given by the flag or the variable (clap reads both), or the error naming it.
    pub fn require(&self, value: Option<&str>) -> anyhow::Result<String> {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!(self.missing()))
    }
}

/// The deployed stack's two tables, for the commands that work on the event log and the list
/// projection (`lector replay --aws`, `lector projections ... --aws`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StackTables {
    /// Work on the deployed stack instead of the local data folder. Credentials, region and
    /// endpoint come from the AWS SDK's usual chain.
    #[arg(long)]
    pub aws: bool,
    /// With --aws: the event log table (the stack's EventTableName output).
    #[arg(long, env = TABLE_VAR, value_name = "TABLE", hide_env_values = true)]
    pub table: Option<String>,
    /// With --aws: the list projection's table (the stack's ListTableName output).
    #[arg(long, env = INDEX_TABLE_VAR, value_name = "TABLE", hide_env_values = true)]
    pub list_table: Option<String>,
}

/// The deployed list of subscriptions, for `lector projections ... --aws`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StackFeedTable {
    /// With --aws: the list of subscriptions' table (the stack's FeedTableName output).
    #[arg(long, env = FEED_TABLE_VAR, value_name = "TABLE", hide_env_values = true)]
    pub feed_table: Option<String>,
}

impl StackFeedTable {
    /// The list of subscriptions on its table; a missing name is named with its stack output.
    pub async fn connect(&self) -> anyhow::Result<DynamoFeedIndex> {
        let table = FEED_TABLE.require(self.feed_table.as_deref())?;
        Ok(DynamoFeedIndex::new(aws_sdk_dynamodb::Client::new(&sdk_config().await?), table))
    }
}

/// The event log and the list projection on DynamoDB.
pub struct TablePorts {
    pub events: Arc<DynamoEventStore>,
    pub index: DynamoConversionIndex,
}

impl std::fmt::Debug for TablePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TablePorts")
            .field("events", &self.events.table())
            .field("index", &self.index)
            .finish()
    }
}

impl StackTables {
    /// Both tables' names, or every missing one named.
    fn names(&self) -> Result<(String, String), Vec<String>> {
        match (EVENT_TABLE.require(self.table.as_deref()), LIST_TABLE.require(self.list_table.as_deref())) {
            (Ok(table), Ok(list_table)) => Ok((table, list_table)),
            (table, list_table) => {
                Err([table.err(), list_table.err()].into_iter().flatten().map(|e| e.to_string()).collect())
            }
        }
    }

    /// The adapters on both tables, from the SDK config.
    fn ports(table: String, list_table: String, config: &SdkConfig) -> TablePorts {
        let dynamodb = aws_sdk_dynamodb::Client::new(config);
        TablePorts {
            events: Arc::new(DynamoEventStore::new(dynamodb.clone(), table)),
            index: DynamoConversionIndex::new(dynamodb, list_table),
        }
    }

    /// The adapters on both tables; a missing name fails before anything is read.
    pub async fn connect(&self) -> anyhow::Result<TablePorts> {
        let (table, list_table) = self.names().map_err(|missing| anyhow::anyhow!(missing.join("\n")))?;
        Ok(Self::ports(table, list_table, &sdk_config().await?))
    }
}

/// The settings of `lector replay --aws`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReplayStackArgs {
    #[command(flatten)]
    pub tables: StackTables,
    /// With --aws: the conversion state machine (the stack's StateMachineArn output); needed
    /// to redrive or restart.
    #[arg(long, env = STATE_MACHINE_VAR, value_name = "ARN", hide_env_values = true)]
    pub state_machine_arn: Option<String>,
}

/// The SDK config from the usual chain, with a region (every call needs one).
pub async fn sdk_config() -> anyhow::Result<SdkConfig> {
    let config = lector_aws::sdk::load(None).await;
    anyhow::ensure!(
        config.region().is_some(),
        "no AWS region: set AWS_REGION (or AWS_PROFILE naming a profile with a region)"
    );
    Ok(config)
}

/// The ports `lector replay --aws` works on.
pub struct ReplayPorts {
    pub events: Arc<dyn EventStore>,
    pub index: DynamoConversionIndex,
    pub workflows: Box<dyn Workflows>,
}

impl std::fmt::Debug for ReplayPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayPorts").field("index", &self.index).finish_non_exhaustive()
    }
}

impl ReplayPorts {
    /// Every setting is checked before anything is read, so a missing one fails at once; the
    /// state machine is needed only to act.
    pub async fn connect(args: &ReplayStackArgs, acting: bool) -> anyhow::Result<Self> {
        let state_machine = STATE_MACHINE.require(args.state_machine_arn.as_deref());
        let (tables, mut missing) = match args.tables.names() {
            Ok(names) => (Some(names), Vec::new()),
            Err(missing) => (None, missing),
        };
        if acting && let Err(e) = &state_machine {
            missing.push(e.to_string());
        }
        let (Some((table, list_table)), true) = (tables, missing.is_empty()) else {
            anyhow::bail!("{}", missing.join("\n"));
        };
        let config = sdk_config().await?;
        let TablePorts { events, index } = StackTables::ports(table, list_table, &config);
        let workflows: Box<dyn Workflows> = match state_machine {
            Ok(arn) => Box::new(StepFunctions::new(aws_sdk_sfn::Client::new(&config), arn)),
            Err(_) => Box::new(NoStateMachine),
        };
        Ok(Self { events, index, workflows })
    }
}

/// Workflows when no state machine is configured: listing needs none, anything else is refused
/// with the setting's name.
#[derive(Debug)]
struct NoStateMachine;

#[async_trait]
impl Workflows for NoStateMachine {
    async fn start(&self, _name: &str, _input: &Value) -> Result<String, WorkflowError> {
        Err(WorkflowError::Failed(STATE_MACHINE.missing()))
    }

    async fn redrive(&self, _execution_id: &str) -> Result<(), WorkflowError> {
        Err(WorkflowError::Failed(STATE_MACHINE.missing()))
    }

    async fn describe(&self, _execution_id: &str) -> Result<ExecutionInfo, WorkflowError> {
        Err(WorkflowError::Failed(STATE_MACHINE.missing()))
    }
}

/// The archive replays of `lector events replay --aws`.
pub async fn archive_replays(archive: Option<&str>) -> anyhow::Result<lector_aws::archive::ArchiveReplays> {
    let archive = ARCHIVE.require(archive)?;
    let config = sdk_config().await.context("the AWS SDK's configuration")?;
    Ok(lector_aws::archive::ArchiveReplays::new(aws_sdk_eventbridge::Client::new(&config), archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_setting_names_its_variable_flag_and_stack_output() {
        let err = STATE_MACHINE.require(Some("  ")).unwrap_err().to_string();
        assert!(
            err.starts_with("LECTOR_STATE_MACHINE_ARN is not set (nor --state-machine-arn given)"),
            "{err}"
        );
        assert!(err.contains("StateMachineArn output"), "{err}");
        assert!(err.contains("sam list stack-outputs --stack-name lector"), "{err}");
        assert_eq!(EVENT_TABLE.require(Some(" events ")).unwrap(), "events");
        assert!(ARCHIVE.require(None).unwrap_err().to_string().contains("EventArchiveName"));
    }
}
