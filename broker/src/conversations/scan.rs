//! Finds the transcripts under `CLAUDE_HOME/projects`: a fixed-depth walk
//! (so symlink loops cannot recurse) that follows symlinks, counts broken
//! ones and unreadable folders, and classifies each `.jsonl` file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// What a transcript file is, from its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TranscriptKind {
    /// `projects/<dir>/<sessionId>.jsonl`
    Main { id: String },
    /// `projects/<dir>/<sessionId>/subagents/agent-<agentId>.jsonl`
    Subagent { parent: String, agent_id: String },
    /// `projects/<dir>/agent-<agentId>.jsonl` (older layout); the parent
    /// comes from the records' `sessionId`.
    LegacySubagent { agent_id: String },
}

/// Size and modification time, to skip unchanged files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub mtime_ns: i128,
}

impl FileStamp {
    pub fn of(meta: &fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            len: meta.len(),
            mtime_ns,
        }
    }
}

/// One transcript found by a walk.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub kind: TranscriptKind,
    pub stamp: FileStamp,
}

/// The result of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    pub found: Vec<Found>,
    pub broken_links: u32,
    pub unreadable: u32,
}

/// Classifies `path` relative to the `projects` folder.
pub fn classify(projects: &Path, path: &Path) -> Option<TranscriptKind> {
    let rel = path.strip_prefix(projects).ok()?;
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
    let stem = |name: &str| {
        name.strip_suffix(".jsonl")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match parts.as_slice() {
        [_, file] => {
            let id = stem(file)?;
            Some(match id.strip_prefix("agent-") {
                Some(agent) => TranscriptKind::LegacySubagent {
                    agent_id: agent.to_owned(),
                },
                None => TranscriptKind::Main { id },
            })
        }
        [_, session, "subagents", file] => {
            let agent = stem(file)?;
            let agent_id = agent.strip_prefix("agent-").unwrap_or(&agent).to_owned();
            Some(TranscriptKind::Subagent {
                parent: (*session).to_owned(),
                agent_id,
            })
        }
        _ => None,
    }
}

/// Walks `projects` (missing: an empty walk).
pub fn walk(projects: &Path) -> Walk {
    let mut walk = Walk::default();
    let Some(project_dirs) = list_dir(projects, &mut walk) else {
        return walk;
    };
    for project in project_dirs {
        let Some(meta) = stat(&project, &mut walk) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let Some(entries) = list_dir(&project, &mut walk) else {
            continue;
        };
        for entry in entries {
            let Some(meta) = stat(&entry, &mut walk) else {
                continue;
            };
            if meta.is_file() {
                add(projects, entry, &meta, &mut walk);
            } else if meta.is_dir() {
                walk_subagents(projects, &entry.join("subagents"), &mut walk);
            }
        }
    }
    walk
}

fn walk_subagents(projects: &Path, dir: &Path, walk: &mut Walk) {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        _ => return,
    }
    let Some(entries) = list_dir(dir, walk) else {
        return;
    };
    for entry in entries {
        if let Some(meta) = stat(&entry, walk)
            && meta.is_file()
        {
            add(projects, entry, &meta, walk);
        }
    }
}

fn add(projects: &Path, path: PathBuf, meta: &fs::Metadata, walk: &mut Walk) {
    if let Some(kind) = classify(projects, &path) {
        walk.found.push(Found {
            stamp: FileStamp::of(meta),
            path,
            kind,
        });
    }
}

/// Lists a folder; a missing one is not damage, an unreadable one is.
fn list_dir(dir: &Path, walk: &mut Walk) -> Option<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => Some(entries.filter_map(Result::ok).map(|e| e.path()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(_) => {
            walk.unreadable += 1;
            None
        }
    }
}

/// Follows symlinks; a dangling or looping one is counted, not fatal.
fn stat(path: &Path, walk: &mut Walk) -> Option<fs::Metadata> {
    match fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(_) => {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                walk.broken_links += 1;
            } else {
                walk.unreadable += 1;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_both_subagent_layouts() {
        let p = Path::new("/h/projects");
        assert_eq!(
            classify(p, &p.join("-a/abc.jsonl")),
            Some(TranscriptKind::Main { id: "abc".into() })
        );
        assert_eq!(
            classify(p, &p.join("-a/abc/subagents/agent-x1.jsonl")),
            Some(TranscriptKind::Subagent {
                parent: "abc".into(),
                agent_id: "x1".into()
            })
        );
        assert_eq!(
            classify(p, &p.join("-a/agent-x2.jsonl")),
            Some(TranscriptKind::LegacySubagent {
                agent_id: "x2".into()
            })
        );
        assert_eq!(classify(p, &p.join("-a/notes.txt")), None);
        assert_eq!(classify(p, &p.join("top.jsonl")), None);
    }
}
