// Starts Swagger UI on the service's own OpenAPI document. A file, not an inline script: the page's
// Content-Security-Policy allows scripts from the service only.
window.ui = SwaggerUIBundle({ url: '/swagger/json', dom_id: '#swagger-ui', persistAuthorization: true, deepLinking: true })
