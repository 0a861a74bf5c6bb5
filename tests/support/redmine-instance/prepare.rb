# Run once by start_redmine.sh on a fresh instance (rails runner, RAILS_ENV=production):
# migrate, load the default data, enable the REST API and create what the bridge's tests need.
ActiveRecord::Migration.verbose = false
ActiveRecord::Base.connection.migration_context.migrate
ActiveRecord::Base.descendants.each { |m| m.reset_column_information rescue nil }
Redmine::DefaultData::Loader.load('en') if Redmine::DefaultData::Loader.no_data?
Setting.rest_api_enabled = '1'
Setting.login_required = '1'     # bad/missing API key => 401 instead of anonymous
Setting.notified_events = []     # no mail jobs (there is no MTA)
admin = User.find_by_login('admin')
admin.must_change_passwd = false
admin.save!
key = admin.api_key              # creates the 'api' Token if missing
tracker_ids = Tracker.pluck(:id)
unless Project.find_by_identifier('support')
  Project.create!(name: 'Support', identifier: 'support', is_public: true,
                  tracker_ids: tracker_ids,
                  enabled_module_names: Redmine::AccessControl.available_project_modules.map(&:to_s))
end
cf = IssueCustomField.find_by_name('nhd_uuid') ||
     IssueCustomField.create!(name: 'nhd_uuid', field_format: 'string', is_for_all: true,
                              is_filter: true, searchable: true, visible: true,
                              tracker_ids: tracker_ids)
File.write(File.join(Redmine.root, 'config', 'api_key.txt'), key)
File.write(File.join(Redmine.root, 'config', 'nhd_uuid_cf_id.txt'), cf.id.to_s)
