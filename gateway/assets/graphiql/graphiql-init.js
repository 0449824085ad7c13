// changewire's GraphiQL start-up, loaded by the page at GET /graphql after
// React, ReactDOM and GraphiQL (the UMD bundles set the globals `React`,
// `ReactDOM` and `GraphiQL`). It lives in its own file because the page's
// Content-Security-Policy allows no inline script.
(function () {
  'use strict';

  var root = document.getElementById('graphiql');
  if (!root || typeof GraphiQL === 'undefined') {
    return;
  }

  // Every request but /healthz needs `Authorization: Bearer <token>`: the
  // headers editor starts open with a template to paste the token into.
  // Headers are not persisted (shouldPersistHeaders), so a token does not
  // outlive the tab in localStorage.
  var headers = JSON.stringify({ Authorization: 'Bearer <paste a token here>' }, null, 2);

  var element = React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: '/graphql' }),
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    defaultHeaders: headers,
    defaultEditorToolsVisibility: 'headers',
  });
  ReactDOM.createRoot(root).render(element);
})();
