//! The words for an attention's reason, shared by the page and the service
//! worker (so it imports nothing).

/** Words for an attention's reason. */
export function attentionText(reason: string): string {
  switch (reason) {
    case 'permission':
      return 'needs a permission decision';
    case 'input':
      return 'waits for input';
    case 'bell':
      return 'rang the bell';
    default:
      return 'sent a notification';
  }
}
