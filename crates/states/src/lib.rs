//! A local Step Functions engine: runs Amazon States Language definitions (JSONPath query
//! language) the way AWS Step Functions does, durably.
//!
//! # Seams
//!
//! - [`Definition`]: ASL JSON parsed and validated, with SAM-style
//!   [`DefinitionSubstitutions`] (`${FetchFunctionArn}`) applied first; [`validate`] returns
//!   every [`Diagnostic`] (unknown state types, missing `Next` targets, unreachable states, no
//!   terminal state, bad paths, bad retriers, ...). JSONata definitions are refused as
//!   unsupported.
//! - [`TaskRegistry`]: maps a Task `Resource` — a Lambda ARN, a substituted `${...Arn}`, a
//!   function name, or `arn:aws:states:::lambda:invoke` with `Parameters.FunctionName` —
//!   to an async handler `Fn(Value, TaskContext) -> Result<Value, TaskError>`. A
//!   [`TaskError`] carries a stable error name (`Lector.Transient`) that `Retry` and `Catch`
//!   match, as a Lambda error does. [`TaskContext`] tells the handler the execution, the
//!   state, the Map item index and the retry count.
//! - [`Engine`]: built from an [`ExecutionStore`], a [`Clock`] and the registry; registers
//!   state machines by name and offers `start_execution` (AWS Standard name rules),
//!   `describe`, `history` (AWS event shapes), `list_executions`, `wait`, `stop`, `redrive`
//!   and `resume`.
//! - Stores: [`MemoryStore`] and [`SqliteStore`] (WAL, a file the caller chooses). Every
//!   transition of a Standard execution is written before the next state starts, so a killed
//!   process resumes its running executions without running a completed Task again. An
//!   Express execution's transitions are held in memory: it runs again from its start after a
//!   restart, and its history is written when it ends, only if it did not succeed.
//! - Clocks: [`RealClock`] and [`VirtualClock`] (Wait states, retry intervals and timeouts
//!   pass instantly, in deadline order).
//! - [`conformance`]: runs a folder of AWS-recorded cases and reports each difference; used
//!   by `lector asl test` and by this crate's tests.
//!
//! The engine depends on none of the project's other crates.

pub mod choice;
pub mod clock;
pub mod conformance;
pub mod definition;
mod engine;
pub mod error;
mod exec;
pub mod history;
pub mod intrinsic;
pub mod path;
pub mod store;
pub mod task;
pub mod template;

pub use clock::{Clock, RealClock, VirtualClock};
pub use definition::{Definition, DefinitionError, DefinitionSubstitutions, Diagnostic, Severity, validate};
pub use engine::{EXPRESS_MAX_DURATION, Engine, StartedExecution, StateMachineType, SyncExecution};
pub use error::{EngineError, Failure};
pub use exec::EngineConfig;
pub use history::HistoryEvent;
pub use store::{ExecutionRecord, ExecutionStatus, ExecutionStore, MemoryStore, SqliteStore, StoreError};
pub use task::{TaskContext, TaskError, TaskHandler, TaskOutput, TaskRegistry};
