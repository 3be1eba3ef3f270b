//! `posbridge demo`: the whole job on local simulators, no setup. (Being written.)

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {}

pub fn run(_g: &GlobalArgs, _a: &DemoArgs) -> anyhow::Result<i32> {
    anyhow::bail!("demo is not implemented yet")
}
