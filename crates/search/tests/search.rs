//! hearth-search: every behaviour through the public API.

mod search {
    pub mod events;
    pub mod helpers;
    pub mod input;
    pub mod language;
    pub mod lifecycle;
    pub mod queries;
    pub mod scope;
    pub mod writes;
}
