/** How one view asks another to show something: a domain's log, or an instance. */

export function openDomain(domain) {
  document.dispatchEvent(new CustomEvent('console:domain', { detail: { domain } }));
}

export function openInstance(domain, type, id) {
  document.dispatchEvent(new CustomEvent('console:instance', { detail: { domain, type, id } }));
}

export function onOpenDomain(listener) {
  document.addEventListener('console:domain', (e) => listener(e.detail));
}

export function onOpenInstance(listener) {
  document.addEventListener('console:instance', (e) => listener(e.detail));
}
