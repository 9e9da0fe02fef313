//! Node ids: `run/phase/step/...`, the first segment naming the run.
//!
//! Ids travel through CLI arguments, URLs and database keys, so they are kept to
//! a small, shell- and URL-safe alphabet and a bounded size.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most segments a path may have (a run plus 15 levels below it).
pub const MAX_SEGMENTS: usize = 16;
/// Longest segment, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 64;
/// Longest whole path, in bytes.
pub const MAX_PATH_BYTES: usize = 256;

/// A validated node id such as `train-42/build/compile`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodePath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("node id is empty; write a run name such as 'train-42' or a path such as 'train-42/build'")]
    Empty,
    #[error("node id of {0} bytes is too long; the limit is {MAX_PATH_BYTES}")]
    TooLong(usize),
    #[error("node id '{0}' starts or ends with '/'; write segments separated by single '/', e.g. 'run/step'")]
    EdgeSlash(String),
    #[error("node id '{0}' has an empty segment; write segments separated by single '/'")]
    EmptySegment(String),
    #[error("node id '{0}' has {1} segments; the limit is {MAX_SEGMENTS}")]
    TooDeep(String, usize),
    #[error("segment '{0}' is {1} bytes long; the limit is {MAX_SEGMENT_BYTES}")]
    SegmentTooLong(String, usize),
    #[error("segment '{0}' contains {1:?}; use only letters, digits, '.', '_' and '-'")]
    BadChar(String, char),
    #[error("segment '{0}' starts with '{1}'; start it with a letter, digit or '_'")]
    BadStart(String, char),
}

impl NodePath {
    pub fn parse(text: &str) -> Result<NodePath, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(text.len()));
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(PathError::EdgeSlash(text.into()));
        }
        let segments: Vec<&str> = text.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(PathError::EmptySegment(text.into()));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooDeep(text.into(), segments.len()));
        }
        segments.into_iter().try_for_each(check_segment)?;
        Ok(NodePath(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The run this node belongs to: the first segment.
    pub fn run(&self) -> &str {
        self.segments().next().unwrap_or(&self.0)
    }

    /// The enclosing node, or `None` for a run.
    pub fn parent(&self) -> Option<NodePath> {
        self.0.rsplit_once('/').map(|(parent, _)| NodePath(parent.to_string()))
    }

    /// Number of segments; a run has depth 1.
    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// A proper ancestor: `a` is an ancestor of `a/b` but not of `a` or `ab`.
    pub fn is_ancestor_of(&self, other: &NodePath) -> bool {
        other.0.len() > self.0.len() && other.0.starts_with(&self.0) && other.0.as_bytes()[self.0.len()] == b'/'
    }

    /// The child `name` of this node, validated like any path.
    pub fn child(&self, name: &str) -> Result<NodePath, PathError> {
        NodePath::parse(&format!("{}/{name}", self.0))
    }
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::SegmentTooLong(segment.into(), segment.len()));
    }
    if let Some(c) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(PathError::BadChar(segment.into(), c));
    }
    match segment.chars().next() {
        Some(c @ ('.' | '-')) => Err(PathError::BadStart(segment.into(), c)),
        _ => Ok(()),
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for NodePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodePath::parse(s)
    }
}

impl TryFrom<String> for NodePath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NodePath::parse(&s)
    }
}

impl From<NodePath> for String {
    fn from(p: NodePath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(text: &str) -> NodePath {
        NodePath::parse(text).unwrap()
    }

    #[test]
    fn parses_and_navigates() {
        let path = p("train-42/build/compile");
        assert_eq!(path.to_string(), "train-42/build/compile");
        assert_eq!(path.run(), "train-42");
        assert_eq!(path.name(), "compile");
        assert_eq!(path.depth(), 3);
        assert_eq!(path.parent(), Some(p("train-42/build")));
        assert_eq!(p("train-42").parent(), None);
        assert_eq!(p("train-42").name(), "train-42");
        assert_eq!(p("train-42").run(), "train-42");
        assert_eq!(p("a").child("b_1.x").unwrap(), p("a/b_1.x"));
        assert!(p("a").child("../x").is_err());
    }

    #[test]
    fn ancestry_is_by_whole_segments() {
        assert!(p("a").is_ancestor_of(&p("a/b")));
        assert!(p("a").is_ancestor_of(&p("a/b/c")));
        assert!(p("a/b").is_ancestor_of(&p("a/b/c")));
        assert!(!p("a").is_ancestor_of(&p("a")));
        assert!(!p("a").is_ancestor_of(&p("ab/c")));
        assert!(!p("a/b").is_ancestor_of(&p("a")));
        assert!(!p("a/b").is_ancestor_of(&p("a/c/d")));
    }

    #[test]
    fn accepts_the_limits() {
        let deepest = vec!["s"; MAX_SEGMENTS].join("/");
        assert_eq!(p(&deepest).depth(), MAX_SEGMENTS);
        let widest = "x".repeat(MAX_SEGMENT_BYTES);
        assert_eq!(p(&widest).name().len(), MAX_SEGMENT_BYTES);
        let longest = vec!["y".repeat(63); 3].join("/") + "/" + &"z".repeat(64);
        assert_eq!(longest.len(), MAX_PATH_BYTES);
        assert!(NodePath::parse(&longest).is_ok());
        assert_eq!(NodePath::parse(&format!("{longest}z")), Err(PathError::TooLong(MAX_PATH_BYTES + 1)));
        assert!(NodePath::parse("_a/0/A.b-c").is_ok());
    }

    #[test]
    fn rejects_bad_ids_naming_value_and_rule() {
        let too_long = vec!["a".repeat(60); 5].join("/");
        let too_deep = vec!["s"; MAX_SEGMENTS + 1].join("/");
        let wide = "w".repeat(MAX_SEGMENT_BYTES + 1);
        let cases = [
            ("", PathError::Empty, "node id is empty"),
            (too_long.as_str(), PathError::TooLong(304), "node id of 304 bytes is too long; the limit is 256"),
            ("/a", PathError::EdgeSlash("/a".into()), "node id '/a' starts or ends with '/'"),
            ("a/", PathError::EdgeSlash("a/".into()), "node id 'a/' starts or ends with '/'"),
            (
                "a//b",
                PathError::EmptySegment("a//b".into()),
                "node id 'a//b' has an empty segment; write segments separated by single '/'",
            ),
            (too_deep.as_str(), PathError::TooDeep(too_deep.clone(), 17), "has 17 segments; the limit is 16"),
            (wide.as_str(), PathError::SegmentTooLong(wide.clone(), 65), "is 65 bytes long; the limit is 64"),
            ("a/b c", PathError::BadChar("b c".into(), ' '), "segment 'b c' contains ' '; use only letters"),
            ("a/é", PathError::BadChar("é".into(), 'é'), "segment 'é' contains 'é'"),
            ("run/.hidden", PathError::BadStart(".hidden".into(), '.'), "segment '.hidden' starts with '.'"),
            ("-x", PathError::BadStart("-x".into(), '-'), "segment '-x' starts with '-'"),
            ("a/..", PathError::BadStart("..".into(), '.'), "segment '..' starts with '.'"),
        ];
        for (text, error, message) in cases {
            let got = NodePath::parse(text).unwrap_err();
            assert_eq!(got, error, "{text}");
            assert!(got.to_string().contains(message), "{text}: {got}");
        }
    }

    #[test]
    fn serialises_as_a_string_and_validates_on_the_way_in() {
        let path = p("run/step");
        assert_eq!(serde_json::to_string(&path).unwrap(), "\"run/step\"");
        assert_eq!(serde_json::from_str::<NodePath>("\"run/step\"").unwrap(), path);
        let err = serde_json::from_str::<NodePath>("\"run//step\"").unwrap_err();
        assert!(err.to_string().contains("empty segment"), "{err}");
    }

    proptest! {
        /// Any path made of valid segments parses, prints back unchanged, and its
        /// child's parent is itself.
        #[test]
        fn valid_paths_round_trip(
            segments in proptest::collection::vec("[A-Za-z0-9_][A-Za-z0-9._-]{0,14}", 1..MAX_SEGMENTS),
            child in "[A-Za-z0-9_][A-Za-z0-9._-]{0,14}",
        ) {
            let text = segments.join("/");
            let path = NodePath::parse(&text).unwrap();
            prop_assert_eq!(path.as_str(), text.as_str());
            prop_assert_eq!(path.depth(), segments.len());
            prop_assert_eq!(path.run(), segments[0].as_str());
            prop_assert_eq!(NodePath::parse(&path.to_string()).unwrap(), path.clone());
            let json = serde_json::to_string(&path).unwrap();
            prop_assert_eq!(serde_json::from_str::<NodePath>(&json).unwrap(), path.clone());
            let kid = path.child(&child).unwrap();
            prop_assert_eq!(kid.parent(), Some(path.clone()));
            prop_assert_eq!(kid.name(), child.as_str());
            prop_assert!(path.is_ancestor_of(&kid));
        }
    }
}
