//! Query, filter and ordering types, and their validation.

use serde::{Deserialize, Serialize};

use super::error::QueryError;
use super::key::rank;
use crate::data::{ObjectId, Value, MAX_VALUE_DEPTH};

/// Most levels of nesting of `And` / `Or` / `Not` / `RefersTo` in one filter.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Largest `max_depth` of a [`Filter::Reachable`] traversal.
pub const MAX_TRAVERSAL_DEPTH: u32 = 256;

/// A query: which objects, in which order, which slice of the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub filter: Filter,
    /// Sort keys, most significant first. Ties (and an empty `order`) are
    /// broken by ascending [`ObjectId`], so every replica with the same state
    /// returns the same ids in the same order.
    pub order: Vec<Order>,
    /// At most this many ids (after `offset`). `None`: all.
    pub limit: Option<usize>,
    /// Skip this many ids of the ordered result first.
    pub offset: usize,
    /// Include soft-deleted objects (in results and as traversal waypoints
    /// and `RefersTo` targets).
    pub include_deleted: bool,
}

impl Default for Query {
    fn default() -> Self {
        Self::new(Filter::All)
    }
}

impl Query {
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            order: Vec::new(),
            limit: None,
            offset: 0,
            include_deleted: false,
        }
    }
    /// Adds a sort key (after the ones already given).
    pub fn order_by(mut self, field: impl Into<String>, descending: bool) -> Self {
        self.order.push(Order {
            field: field.into(),
            descending,
        });
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
    pub fn include_deleted(mut self, include: bool) -> Self {
        self.include_deleted = include;
        self
    }
    /// True when the result is a window of an ordered sequence (an order,
    /// a limit or an offset is given). Live diffs of such queries carry the
    /// whole new window.
    pub fn is_windowed(&self) -> bool {
        !self.order.is_empty() || self.limit.is_some() || self.offset > 0
    }

    /// Checks the query without running it.
    pub fn validate(&self) -> Result<(), QueryError> {
        for o in &self.order {
            if o.field.is_empty() {
                return Err(QueryError::EmptyField { context: "order" });
            }
        }
        self.filter.validate(1)
    }
}

/// One sort key. Values sort by the total order of the module docs; an
/// object without the field sorts before every value (last when descending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

/// Comparison operators of [`Filter::Field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    pub fn symbol(self) -> &'static str {
        match self {
            Compare::Eq => "=",
            Compare::Ne => "!=",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }
    pub(crate) fn is_range(self) -> bool {
        matches!(self, Compare::Lt | Compare::Le | Compare::Gt | Compare::Ge)
    }
}

/// Direction of a [`Filter::Reachable`] traversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From `root` along its `field` refs, then theirs, … (e.g. `root` is a
    /// node and `field` = "next": the nodes after it).
    Outgoing,
    /// Objects whose `field` refs lead to `root` (e.g. `root` is a folder and
    /// `field` = "parent": everything inside it, at any depth).
    Incoming,
}

/// Which objects a query selects. See the module docs for exact semantics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    /// Every object.
    All,
    /// Objects of this type.
    Type(String),
    /// The field is present and compares to `value` with `op`. `Eq`/`Ne` use
    /// total-order equality (`Int(3) == Float(3.0)`, `String == Text` with the
    /// same content, lists and maps structurally). Range ops match only
    /// fields of the same kind as `value` (numbers with numbers, strings with
    /// strings and text, …). A missing field matches no comparison, `Ne`
    /// included (use `Not(Field Eq)` to include objects without the field).
    Field {
        field: String,
        op: Compare,
        value: Value,
    },
    /// The field is present and equals one of `values`.
    In {
        field: String,
        values: Vec<Value>,
    },
    /// The field is present (with any value, `Null` included).
    Exists(String),
    /// The field is a `String` or `Text` containing `needle`, ignoring case
    /// (Unicode lower-casing of both sides).
    TextContains {
        field: String,
        needle: String,
    },
    /// The field is a list with an element equal to `value`.
    ListContains {
        field: String,
        value: Value,
    },
    /// Some field refers to this object (a local ref, anywhere inside the
    /// field's value: directly, in lists or in maps).
    References(ObjectId),
    /// One hop: the object's `field` holds a local ref (directly or inside a
    /// list or map) to an object that matches `target` (and is not deleted,
    /// unless the query includes deleted objects). Nest for fixed paths.
    RefersTo {
        field: String,
        target: Box<Filter>,
    },
    /// Transitive: objects reachable from `root` in 1 to `max_depth` hops
    /// along `field` refs, in `direction`. `root` itself is never part of the
    /// result (not even through a cycle). Deleted objects are not passed
    /// through unless the query includes deleted objects.
    Reachable {
        root: ObjectId,
        field: String,
        direction: Direction,
        max_depth: u32,
    },
    And(Vec<Filter>),
    /// `Or(vec![])` matches nothing; `And(vec![])` matches everything.
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    pub fn type_is(t: impl Into<String>) -> Self {
        Filter::Type(t.into())
    }
    pub fn field(field: impl Into<String>, op: Compare, value: impl Into<Value>) -> Self {
        Filter::Field {
            field: field.into(),
            op,
            value: value.into(),
        }
    }
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::field(field, Compare::Eq, value)
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(filter: Filter) -> Self {
        Filter::Not(Box::new(filter))
    }

    /// True when whether an object matches depends only on that object's own
    /// state (no `RefersTo` / `Reachable`). Live queries re-evaluate only the
    /// changed objects for such filters.
    pub fn is_local(&self) -> bool {
        match self {
            Filter::RefersTo { .. } | Filter::Reachable { .. } => false,
            Filter::And(fs) | Filter::Or(fs) => fs.iter().all(Filter::is_local),
            Filter::Not(f) => f.is_local(),
            _ => true,
        }
    }

    fn validate(&self, depth: usize) -> Result<(), QueryError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(QueryError::TooDeep {
                what: "filter",
                depth,
                max: MAX_FILTER_DEPTH,
            });
        }
        let field_ok = |f: &str| {
            if f.is_empty() {
                Err(QueryError::EmptyField { context: "filter" })
            } else {
                Ok(())
            }
        };
        let value_ok = |v: &Value| {
            // Counted as the model counts stored values: any value that can
            // be stored can be filtered on.
            let d = v.depth();
            if d > MAX_VALUE_DEPTH {
                Err(QueryError::TooDeep {
                    what: "filter value",
                    depth: d,
                    max: MAX_VALUE_DEPTH,
                })
            } else {
                Ok(())
            }
        };
        match self {
            Filter::All | Filter::Type(_) | Filter::References(_) => Ok(()),
            Filter::Field { field, op, value } => {
                field_ok(field)?;
                value_ok(value)?;
                if op.is_range() && !matches!(rank(value), 1..=4) {
                    return Err(QueryError::Incomparable {
                        field: field.clone(),
                        op: op.symbol(),
                        kind: value.kind(),
                    });
                }
                Ok(())
            }
            Filter::In { field, values } => {
                field_ok(field)?;
                values.iter().try_for_each(value_ok)
            }
            Filter::Exists(field) | Filter::TextContains { field, .. } => field_ok(field),
            Filter::ListContains { field, value } => {
                field_ok(field)?;
                value_ok(value)
            }
            Filter::RefersTo { field, target } => {
                field_ok(field)?;
                target.validate(depth + 1)
            }
            Filter::Reachable {
                field, max_depth, ..
            } => {
                field_ok(field)?;
                if *max_depth == 0 || *max_depth > MAX_TRAVERSAL_DEPTH {
                    return Err(QueryError::InvalidDepth {
                        depth: *max_depth,
                        max: MAX_TRAVERSAL_DEPTH,
                    });
                }
                Ok(())
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(|f| f.validate(depth + 1)),
            Filter::Not(f) => f.validate(depth + 1),
        }
    }
}
