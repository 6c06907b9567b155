//! The gateway's public URL (from the tunnel, when one is open): shared,
//! observable state that `GET /public-url` serves and the tunnel sets.

use tokio::sync::watch;

/// The current public URL, `None` while there is none. Cheap to clone; every
/// clone sees and sets the same value.
#[derive(Clone, Debug)]
pub struct PublicUrl(watch::Sender<Option<String>>);

impl Default for PublicUrl {
    fn default() -> Self {
        Self(watch::channel(None).0)
    }
}

impl PublicUrl {
    /// Sets (or clears, with `None`) the URL, waking every subscriber.
    pub fn set(&self, url: Option<String>) {
        self.0.send_replace(url);
    }

    /// The URL right now.
    pub fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// The underlying sender, for the tunnel task to publish through.
    pub fn sender(&self) -> watch::Sender<Option<String>> {
        self.0.clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.0.subscribe()
    }
}
