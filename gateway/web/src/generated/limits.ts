// Generated from proto/src/limits.rs; do not edit. Regenerate with
// DISPATCH_UPDATE_GENERATED=1 cargo nextest run -p dispatch-gateway --test generated

/** Longest session name, in characters (Unicode code points; the gateway and broker refuse longer). */
export const MAX_SESSION_NAME_CHARS = 128;

/** Largest terminal width or height, in cells (sizes are clamped to 1..=this). */
export const MAX_TERMINAL_DIMENSION = 1000;
