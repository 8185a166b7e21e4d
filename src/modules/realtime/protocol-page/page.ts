import { AsyncApiComponentWP as AsyncApi } from '@asyncapi/react-component'
import { createElement } from 'react'
import { createRoot } from 'react-dom/client'

// The service puts the document, parsed when it was built, into the page itself (see ./index.ts).
const parsedDocument = document.getElementById('parsed-document')?.textContent ?? ''

createRoot(document.getElementById('asyncapi') as HTMLElement).render(
  createElement(AsyncApi, {
    schema: parsedDocument,
    config: { show: { sidebar: true, errors: true }, expand: { messageExamples: true }, sidebar: { showOperations: 'byDefault' } },
  }),
)
