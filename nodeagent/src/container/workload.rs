//! What the container's init does last: install the seccomp filter, then execute the task's
//! command (libcontainer's `Executor`).
//!
//! libcontainer calls [`Executor::exec`] in the init process after it has set up the
//! namespaces, the root filesystem, the user, `no_new_privs` and the capabilities, and after the
//! start signal: the filter therefore constrains only the task, never libcontainer's own setup.
//! The program is built in the caller before the init is forked, so the init only loads it.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use seccompiler::BpfProgram;

use super::seccomp;

/// libcontainer's default executor with the seccomp filter installed right before `execvp`.
#[derive(Clone)]
pub struct Filtered {
    program: BpfProgram,
}

impl Filtered {
    pub fn new(program: BpfProgram) -> Filtered {
        Filtered { program }
    }
}

impl Executor for Filtered {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Fail closed: a task never runs without its filter.
        seccomp::install(&self.program).map_err(ExecutorError::Other)?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
