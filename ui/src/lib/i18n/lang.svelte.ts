// The active language as reactive state: every t() call in a template re-runs when it changes,
// so switching language in Settings re-renders the whole UI in place.
export const current = $state({ code: 'en' });
