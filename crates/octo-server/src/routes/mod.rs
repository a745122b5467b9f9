//! The routes, grouped as Octopoes' router groups them (its OpenAPI tags), each handler
//! carrying its own OpenAPI description.

mod admin;
mod findings;
mod live_streams;
mod logs;
mod markings;
mod objects;
mod origins;
mod profiles;
pub(crate) mod stream;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Octopoes' default page size.
pub(crate) const DEFAULT_LIMIT: usize = 50;

/// The error body of every failure.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// What went wrong (the field OpenKAT's connector reads).
    detail: String,
    /// The same sentence.
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Octograph API", description = "Octopoes-compatible knowledge-graph API of Octograph."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Every route with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::root_health))
        .routes(routes!(admin::health))
        .routes(routes!(objects::list_objects))
        .routes(routes!(objects::query))
        .routes(routes!(objects::query_many))
        .routes(routes!(objects::load_bulk))
        .routes(routes!(objects::get_object))
        .routes(routes!(objects::object_history))
        .routes(routes!(objects::random_objects))
        .routes(routes!(objects::delete_object))
        .routes(routes!(objects::delete_many))
        .routes(routes!(objects::tree))
        .routes(routes!(origins::list_origins, origins::delete_origin))
        .routes(routes!(origins::origin_parameters))
        .routes(routes!(origins::save_observation))
        .routes(routes!(origins::save_declaration))
        .routes(routes!(origins::save_many_declarations))
        .routes(routes!(origins::save_affirmation))
        .routes(routes!(profiles::list_scan_profiles, profiles::save_scan_profile))
        .routes(routes!(profiles::save_many_scan_profiles))
        .routes(routes!(profiles::recalculate_scan_profiles))
        .routes(routes!(profiles::inheritance))
        .routes(routes!(findings::list_findings))
        .routes(routes!(findings::count_by_severity))
        .routes(routes!(admin::create_node, admin::delete_node))
        .routes(routes!(admin::recalculate_bits))
        .routes(routes!(admin::export))
        .routes(routes!(admin::import_add))
        .routes(routes!(admin::import_new))
        .routes(routes!(markings::get, markings::put, markings::delete))
        .routes(routes!(markings::get_default, markings::put_default))
        .routes(routes!(stream::stream))
        .routes(routes!(stream::live_stream))
        .routes(routes!(live_streams::list, live_streams::create))
        .routes(routes!(live_streams::get, live_streams::update, live_streams::delete))
        .routes(routes!(logs::list_devices, logs::add_device))
        .routes(routes!(logs::get_device, logs::update_device, logs::delete_device))
        .routes(routes!(logs::device_lines))
        .routes(routes!(logs::device_unknown))
        .routes(routes!(logs::stats))
        .routes(routes!(logs::list_services))
        .routes(routes!(logs::get_service, logs::put_service, logs::delete_service))
        .routes(routes!(logs::list_tables))
        .routes(routes!(logs::get_table))
        .routes(routes!(logs::table_rows))
        .routes(routes!(logs::table_counts))
}
