//! A subcommand whose arguments clap builds only when that subcommand is the one run.
//!
//! clap's derive builds every subcommand's arguments before parsing: for mxtrace, hundreds of
//! `Arg`s (with their help text and formatted defaults) in a process that then uses one
//! subcommand's. That was most of the parse's time and heap, paid by every `probe` in a
//! monitoring loop. clap's `Command::defer` postpones a command's building until clap builds it
//! (parsing into it, its help, completions, the manual page), so nothing the user sees changes:
//! <https://docs.rs/clap/4/clap/struct.Command.html#method.defer>. The derive has no switch for it
//! yet (clap issue 4959), hence this wrapper: `Probe(Deferred<Box<ProbeArgs>>)`.

use clap::builder::{Resettable, StyledStr};
use clap::{ArgMatches, Args, Command, FromArgMatches};
use std::ops::Deref;

/// `T`'s arguments, built when clap needs them.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T> Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Self)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Self)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
    fn augment_args(cmd: Command) -> Command {
        cmd.defer(keep_texts::<T, false>)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(keep_texts::<T, true>)
    }
}

/// Adds `T`'s arguments, keeping the texts the subcommand's variant gave. The derive sets a
/// variant's about and after-help once its arguments are added, so that a flattened group's
/// doc comment does not become the subcommand's about; built later, the arguments must not
/// overwrite them either.
fn keep_texts<T: Args, const UPDATE: bool>(cmd: Command) -> Command {
    let text = |t: Option<&StyledStr>| t.cloned().map_or(Resettable::Reset, Resettable::Value);
    let about = text(cmd.get_about());
    let long_about = text(cmd.get_long_about());
    let after_help = text(cmd.get_after_help());
    let after_long_help = text(cmd.get_after_long_help());
    let cmd = if UPDATE {
        T::augment_args_for_update(cmd)
    } else {
        T::augment_args(cmd)
    };
    cmd.about(about)
        .long_about(long_about)
        .after_help(after_help)
        .after_long_help(after_long_help)
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// Only the subcommand that runs is built; built, it keeps its variant's texts.
    #[test]
    fn a_subcommand_is_built_only_when_clap_needs_it() {
        let cmd = Cli::command();
        let probe = cmd.find_subcommand("probe");
        assert_eq!(probe.map(|p| p.get_arguments().count()), Some(0));
        assert!(cmd
            .find_subcommand("lab")
            .is_some_and(|l| l.has_subcommands()));
        let mut built = Cli::command();
        built.build();
        let probe = built.find_subcommand("probe");
        assert!(probe.is_some_and(|p| p.get_arguments().any(|a| a.get_id() == "ehlo")));
        let about = probe.and_then(|p| p.get_about()).map(ToString::to_string);
        assert_eq!(
            about.as_deref(),
            Some("Probe one SMTP endpoint, stage by stage: the \"telnet host 25\" replacement")
        );
    }
}
