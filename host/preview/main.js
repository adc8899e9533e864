// The standalone page: the component with the planner and sample URLs the page's
// <main> names (serve.js puts pkg/web/ under /pkg/ and fixtures/ under /fixtures/).
import { createPreview } from './preview.js';

const root = document.getElementById('preview');
createPreview(root, {
  plannerUrl: root.dataset.plannerUrl,
  sampleUrl: root.dataset.sampleUrl,
}).catch((err) => console.error('preview:', err));
