/** The sidebar's icon: a rocket leaving a queue of three boxes, in Lab's icon colours. */

import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M14.5 2.5c2.9 0 5.8 1 7 2.2-.2 3.6-2 7.2-5.3 9.8l.3 3.4-3.3 2.6-.9-3.2-3.6-3.6-3.2-.9 2.6-3.3 3.4.3c1.5-2 1.9-4.6 3-7.3zm1.8 3.3a1.9 1.9 0 1 0 0 3.8 1.9 1.9 0 0 0 0-3.8z"/>
    <rect x="1.5" y="18" width="3.5" height="3.5" rx=".6"/>
    <rect x="6" y="18" width="3.5" height="3.5" rx=".6"/>
    <rect x="1.5" y="13.5" width="3.5" height="3.5" rx=".6"/>
  </g>
</svg>`;

export const launchIcon = new LabIcon({ name: 'launch-jupyter:launch', svgstr: svg });
