import { initDomainsView, loadDomains } from './domains-view.js';
import { initInstanceView } from './instance-view.js';
import { initLogView } from './log-view.js';
import { initMetricsView } from './metrics-view.js';
import { initTailView } from './tail-view.js';
import { initTokenForm } from './token-form.js';

initTokenForm({ onToken: () => loadDomains() });
initDomainsView();
initLogView();
initInstanceView();
initTailView();
initMetricsView();
loadDomains();
