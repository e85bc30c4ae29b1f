// The API documentation page (/docs): Swagger UI from the package's own copy, reading /openapi.json.
window.addEventListener("load", function () {
  "use strict";
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
