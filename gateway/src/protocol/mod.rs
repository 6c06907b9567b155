//! The browser protocol's wire shapes: every JSON body and WebSocket text
//! message the gateway sends to or takes from the browser is a type here,
//! one file per area. Serde gives the JSON; `ts_rs` gives the TypeScript in
//! `web/src/generated/protocol.ts`, rendered by [`typescript`] from
//! [`DECLARATIONS`] and kept current by `tests/generated.rs`.
//!
//! A new wire shape goes in its area's file (or a new one) with
//! `#[derive(Serialize, Deserialize, TS)]`, and one line in [`DECLARATIONS`].

use ts_rs::{Config, TS};

pub mod auth;
pub mod auth_status;
pub mod conversations;
pub mod egress;
pub mod errors;
pub mod events;
pub mod files;
pub mod notify;
pub mod push;
pub mod sessions;
pub mod shares;
pub mod terminal;
pub mod usage;

/// One exported declaration: renders its type's TypeScript.
pub type Declaration = fn(&Config) -> String;

/// Every type of the generated file, in its order.
pub const DECLARATIONS: &[Declaration] = &[
    // errors
    declare::<errors::ErrorBody>,
    // auth and the public routes
    declare::<auth::LoginRequest>,
    declare::<auth::PublicUrl>,
    declare::<auth::Health>,
    // sessions
    declare::<sessions::SessionMode>,
    declare::<sessions::SessionStatus>,
    declare::<sessions::Attention>,
    declare::<sessions::Session>,
    declare::<sessions::SessionList>,
    declare::<sessions::CreateSessionRequest>,
    declare::<sessions::RenameSessionRequest>,
    // terminal
    declare::<terminal::ServerMessage>,
    declare::<terminal::ClientMessage>,
    // events
    declare::<events::EventMessage>,
    declare::<events::EventClientMessage>,
    // conversations
    declare::<conversations::Tokens>,
    declare::<conversations::ActivityStatus>,
    declare::<conversations::Subagent>,
    declare::<conversations::ConversationContext>,
    declare::<conversations::Conversation>,
    declare::<conversations::ConversationPage>,
    declare::<conversations::Role>,
    declare::<conversations::ImageType>,
    declare::<conversations::Image>,
    declare::<conversations::ToolResult>,
    declare::<conversations::Block>,
    declare::<conversations::Message>,
    declare::<conversations::MessagePage>,
    declare::<conversations::SearchHit>,
    declare::<conversations::SearchResults>,
    declare::<conversations::FeedEvent>,
    declare::<conversations::ConversationSort>,
    declare::<conversations::SortOrder>,
    declare::<conversations::MessagesFrom>,
    declare::<conversations::ConversationQuery>,
    declare::<conversations::MessageQuery>,
    declare::<conversations::SearchQuery>,
    // usage
    declare::<usage::GroupBy>,
    declare::<usage::UsageQuery>,
    declare::<usage::UsageTokens>,
    declare::<usage::ModelUsage>,
    declare::<usage::UsageGroup>,
    declare::<usage::CostlyConversation>,
    declare::<usage::UsageReport>,
    // egress
    declare::<egress::EgressDecision>,
    declare::<egress::EgressHost>,
    declare::<egress::EgressReport>,
    // push
    declare::<push::PushKey>,
    declare::<push::NewSubscription>,
    declare::<push::SubscriptionKeys>,
    declare::<push::Subscribed>,
    declare::<push::Unsubscription>,
    declare::<push::PushMessage>,
    // shares
    declare::<shares::CreateShare>,
    declare::<shares::ShareInfo>,
    declare::<shares::CreatedShare>,
    declare::<shares::ShareList>,
    declare::<shares::OpenShare>,
    declare::<shares::SharedView>,
    // files
    declare::<files::FileKind>,
    declare::<files::FileEntry>,
    declare::<files::FileList>,
    declare::<files::UploadedFile>,
    // whether logged in
    declare::<auth_status::AuthStatus>,
];

const HEADER: &str = "\
// Generated from gateway/src/protocol/ (the Rust types are the definition); do not edit.
// Regenerate with DISPATCH_UPDATE_GENERATED=1 cargo nextest run -p dispatch-gateway --test generated
";

/// The whole `web/src/generated/protocol.ts`.
pub fn typescript() -> String {
    // Timestamps and byte counts are far below 2^53: plain numbers in the browser.
    let config = Config::new().with_large_int("number");
    let mut out = String::from(HEADER);
    for declaration in DECLARATIONS {
        out.push('\n');
        out.push_str(&declaration(&config));
        out.push('\n');
    }
    out
}

/// `T`'s doc comment and `export type T = ...;`.
fn declare<T: TS>(config: &Config) -> String {
    let docs = T::docs().unwrap_or_default();
    format!("{docs}export {}", T::decl(config))
}
