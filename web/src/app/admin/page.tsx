import { AdminArea } from '@/components/AdminArea';

export const metadata = { title: 'Hearth admin' };

export default function AdminPage() {
  return <AdminArea />;
}
