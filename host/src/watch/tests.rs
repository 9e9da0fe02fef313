//! A job's loop with events that are hard to provoke from outside: the kernel's
//! queue overflow and watcher errors must each become a counted rescan run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::Flag;
use notify::{Event, EventKind};
use tokio::sync::{broadcast, mpsc};

use super::job::{Context, Control, Job};
use super::jobs::JobView;
use super::{JobConfig, JobEvent, Reason};
use crate::watch::config::CommandLine;

#[test]
fn an_overflow_or_a_watcher_error_runs_the_command_for_the_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let config = JobConfig {
        name: "r".into(),
        paths: vec![root.clone()],
        recursive: true,
        include: vec![],
        exclude: vec![],
        ignore_files: true,
        debounce: "10ms".into(),
        command: CommandLine::Argv(vec!["true".into()]),
        on_delete: None,
        shell: false,
        pass: Default::default(),
        busy: Default::default(),
        timeout: None,
        grace: "1s".into(),
        workdir: None,
    };
    let spec = config.validate().unwrap();
    let (events, mut subscriber) = broadcast::channel(64);
    let ctx = Arc::new(Context { progress: None, events, echo: false, store: None });
    let state = Arc::new(Mutex::new(JobView::default()));
    let job = Job { spec, roots: vec![root.clone()], ctx, state: state.clone() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let watching = job.start_watching().unwrap();
        let inject = watching.sender();
        let (control, inbox) = mpsc::unbounded_channel();
        let task = tokio::spawn(job.run(watching, inbox));
        let mut next =
            async || tokio::time::timeout(Duration::from_secs(10), subscriber.recv()).await.unwrap().unwrap();

        inject.send((0, Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)))).unwrap();
        let JobEvent::Rescan { why, count, .. } = next().await else { panic!("a rescan first") };
        assert_eq!((why.as_str(), count), ("the kernel dropped events (queue overflow)", 1));
        let JobEvent::Started { reason, paths, .. } = next().await else { panic!("then a run") };
        assert_eq!((reason, paths), (Reason::Rescan, vec![root.clone()]));
        let JobEvent::Finished(run) = next().await else { panic!("that ends") };
        assert!(run.succeeded());

        inject.send((0, Err(notify::Error::generic("inotify watch limit reached")))).unwrap();
        let JobEvent::Rescan { why, count, .. } = next().await else { panic!("a rescan") };
        assert_eq!((why.as_str(), count), ("watcher error: inotify watch limit reached", 2));
        let JobEvent::Started { reason, .. } = next().await else { panic!("then a run") };
        assert_eq!(reason, Reason::Rescan);
        let _ = next().await;
        let view = state.lock().unwrap().clone();
        assert_eq!((view.rescans, view.runs), (2, 2));

        let (reply, done) = tokio::sync::oneshot::channel();
        control.send(Control::Stop(reply)).unwrap_or_else(|_| panic!("the job runs"));
        done.await.unwrap();
        task.await.unwrap();
    });
}
