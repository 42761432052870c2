// Svelte actions shared by components.

/**
 * Focuses the element when it appears, but only if focus was lost (the control the user was on
 * just disappeared, e.g. Record turned into Stop): keyboard and screen-reader users keep their
 * place, and focus is never stolen from a control that still exists.
 */
export function focusOnMount(node: HTMLElement): void {
  const active = document.activeElement;
  if (!active || active === document.body || !document.contains(active)) {
    node.focus({ preventScroll: false });
  }
}
